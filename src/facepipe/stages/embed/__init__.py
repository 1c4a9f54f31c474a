"""Embed: one vector per still (embeddings.npz), with the embedder of embed.embedder.

Public API: embed_stills, uses_torch (stage.py); make_embedder, EMBEDDING_DIMS, SPACE
(embedders.py), e.g. for embedding reference photos the same way. Inner: dlib_resnet.py (dlib's
network in PyTorch), dlib_onnx.py (the same network as an ONNX model, run by ONNX Runtime without
torch), dlib_weights.py (where face-recognition-models keeps dlib's files, the network's
architecture, the reader of its weights file and the weights folded for both engines).
"""

from .embedders import EMBEDDING_DIMS, SPACE, make_embedder
from .stage import embed_stills, uses_torch

__all__ = ["EMBEDDING_DIMS", "SPACE", "make_embedder", "embed_stills", "uses_torch"]
