"""Train a small Inception network on the 8x8 digits with nothing but `Session.run`.

This is what `minigraph train` does, without its conveniences (progress bars, metrics
files, Ctrl-C handling, resume): define the graph once, then run it many times.

    python examples/train_digits.py
"""
import _venv  # noqa: F401,I001  (first: re-runs this script with the project's .venv if needed)
import numpy as np

import minigraph as mg

EPOCHS, BATCH_SIZE, SEED = 12, 32, 0

# 1. Define: the network, its loss, and an update node that applies one Adam step.
data = mg.data.digits(test_size=0.25, seed=0)          # x: (N, 1, 8, 8) float32, y: (N,) int64
with mg.Graph() as graph:
    net = mg.models.mini_inception(rng=np.random.default_rng(SEED))
    lr = mg.optim.learning_rate(3e-3)                  # a scalar we feed a new value each epoch
    train_op = mg.optim.Adam(lr).minimize(net.loss)
schedule = mg.optim.step_schedule(3e-3, step_size=4, gamma=0.5)

# 2. Run: a session holds the variables and Adam's moments; each run feeds one batch.
sess = mg.Session(graph, seed=SEED)                    # the seed drives dropout
for epoch in range(EPOCHS):
    losses = []
    for xb, yb in mg.data.batches(data.x_train, data.y_train, BATCH_SIZE, seed=SEED, epoch=epoch):
        loss, _ = sess.run([net.loss, train_op],
                           feed={net.x: xb, net.y: yb, net.training: True, lr: schedule(epoch)})
        losses.append(loss)
    # evaluation: `training` keeps its default (False), so dropout is the identity
    logits = sess.run(net.logits, feed={net.x: data.x_test})
    accuracy = np.mean(logits.argmax(axis=1) == data.y_test)
    print(f"epoch {epoch + 1:2d}: train loss {np.mean(losses):.4f}  test accuracy {accuracy:.4f}")

mg.save(sess, "runs/train_digits.npz")                 # variables and optimizer state
print("saved runs/train_digits.npz")
