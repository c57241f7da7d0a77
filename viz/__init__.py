"""Pictures of minigraph graphs and of what a network learned (installed as minigraph.viz).

Diagrams (Graphviz):

    dot = mg.viz.to_dot(net.probs, collapse=1)      # a graphviz.Digraph; needs no `dot` program
    mg.viz.render(net.probs, "googlenet.svg", collapse=1)
    folded = mg.viz.fold_repeats(outputs); mg.viz.render(folded.outputs, "f.svg", decorate=folded)
    d = mg.viz.diff(old_outputs, new_outputs); mg.viz.render(d.graph, "diff.svg", decorate=d)

Inside a CNN (matplotlib, the `plot` extra; each returns its arrays and draws when given a path):

    mg.viz.filters(sess, weights, "filters.png")
    mg.viz.feature_maps(sess, layer, {x: batch}, "maps.png")
    mg.viz.saliency(sess, logits, x, {x: batch}, class_index, "saliency.png", smoothgrad=50)
    mg.viz.grad_cam(sess, logits, layer, {x: batch}, class_index, "grad_cam.png")
    mg.viz.occlusion(sess, logits, x, {x: batch}, class_index, "occlusion.png")
    mg.viz.translation_invariance(sess, x, logits, images, {"pooled": pool}, "invariance.png")
"""
from .decorate import Decorator
from .diff import GraphDiff, diff
from .dot import to_dot
from .fold import Folded, fold_repeats
from .render import GraphvizNotFoundError, render
from .activations import feature_maps
from .figures import MatplotlibNotFoundError
from .weights import filters
from .cam import GradCAM, grad_cam, upsample_bilinear
from .invariance import Invariance, shift_images, translation_invariance
from .occluder import Occlusion, occlusion
from .sensitivity import saliency

__all__ = ["to_dot", "render", "GraphvizNotFoundError", "filters", "feature_maps", "saliency", "grad_cam",
           "GradCAM", "upsample_bilinear", "occlusion", "Occlusion", "translation_invariance", "Invariance",
           "shift_images", "MatplotlibNotFoundError", "Decorator", "fold_repeats", "Folded", "diff", "GraphDiff"]
