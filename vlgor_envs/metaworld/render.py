"""A low-polygon copy of a Meta-World model for fast software rendering.

Meta-World's Sawyer meshes hold about 67,000 triangles, which software OpenGL (EGL on Mesa
llvmpipe) draws at about 70 frames/s even at 64x64 pixels. The frame only needs the arm's
silhouette, so the renderer gets a copy of the model whose meshes are simplified by vertex
clustering: each mesh's bounding box is cut into cells, every vertex is replaced by the
first vertex of its cell, and the triangles that collapse are dropped. The physics keeps
the full model; poses come from the same ``MjData``.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np

#: Cells along the longest side of a mesh's bounding box (16: ~8k triangles, ~190 frames/s,
#: mean pixel difference from the full meshes 3/255 at 64x64).
CELLS_PER_MESH = 16
_MIN_FACES = 300  # small meshes are cheap and lose shape fast: keep them whole


def low_poly_copy(model: mujoco.MjModel, cells: int = CELLS_PER_MESH) -> mujoco.MjModel:
    """A copy of ``model`` whose large meshes are simplified for rendering only."""
    simple = copy.copy(model)
    for mesh in range(simple.nmesh):
        first_face, n_faces = simple.mesh_faceadr[mesh], simple.mesh_facenum[mesh]
        first_vert, n_verts = simple.mesh_vertadr[mesh], simple.mesh_vertnum[mesh]
        if n_faces < _MIN_FACES:
            continue
        faces = simple.mesh_face[first_face : first_face + n_faces].copy()
        normals = simple.mesh_facenormal[first_face : first_face + n_faces].copy()
        verts = simple.mesh_vert[first_vert : first_vert + n_verts]
        low = verts.min(axis=0)
        cell = max(float((verts.max(axis=0) - low).max()) / cells, 1e-9)
        keys = np.floor((verts - low) / cell).astype(np.int64)
        _, representative, cluster = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        clustered = representative[cluster.ravel()][faces]
        distinct = (
            (clustered[:, 0] != clustered[:, 1])
            & (clustered[:, 1] != clustered[:, 2])
            & (clustered[:, 0] != clustered[:, 2])
        )
        _, first_copy = np.unique(np.sort(clustered, axis=1), axis=0, return_index=True)
        keep = np.zeros(n_faces, dtype=bool)
        keep[first_copy] = True
        keep &= distinct
        kept = int(keep.sum())
        simple.mesh_face[first_face : first_face + kept] = clustered[keep]
        simple.mesh_facenormal[first_face : first_face + kept] = normals[keep]
        simple.mesh_facenum[mesh] = kept
    return simple
