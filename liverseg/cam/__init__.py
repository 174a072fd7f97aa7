"""Grad-CAM localisation priors (paper section 3.3, Fig. 6).

The localisation network's Grad-CAM tells where the network found evidence for the
foreground; :mod:`liverseg.prior` turns it, with the network's probability map and a dense
CRF, into the ROI prior that the tuning network receives.
"""

from liverseg.cam.gradcam import default_cam_layer, grad_cam, score_gradients

__all__ = ["default_cam_layer", "grad_cam", "score_gradients"]
