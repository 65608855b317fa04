"""Named regions of the map: k-means clusters of the corpus codes (or of their 2-D layout), each named by
its most distinctive words.

A region's words are ranked by class-based TF-IDF (c-TF-IDF, as in BERTopic): a word's frequency
within the region, over the region's number of words, times ``log(1 + A / f)``, where ``A`` is the
mean number of words per region and ``f`` the word's frequency over all regions. A word frequent in
one region and rare elsewhere names it; stop words and words under three letters never do.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .properties import content_words
from .validate import Range

MINIBATCH_ABOVE = 50_000  # points from which k-means runs on mini-batches
N_INIT = 4  # k-means restarts (the best of them is kept)
MIN_LETTERS = 3


def cluster(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """A k-means cluster label (0 to k-1) for each row of ``points`` ``[N, d]``, the same for the same seed."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) == 0:
        raise ValueError(f"points must be a non-empty [N, d] array, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points hold NaN or infinite values")
    k = Range(int, 1, len(points)).check("k", k)  # at most one cluster a point
    from sklearn.cluster import KMeans, MiniBatchKMeans  # only where a map is built (slow to import)

    if len(points) > MINIBATCH_ABOVE:
        kmeans = MiniBatchKMeans(n_clusters=k, n_init=N_INIT, batch_size=4096, random_state=seed)
    else:
        kmeans = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed)
    return kmeans.fit_predict(points).astype(np.int64)


def _label_words(line: str) -> list[str]:
    return [w for w in content_words(line) if sum(c.isalpha() for c in w) >= MIN_LETTERS]


def label(lines: list[str], labels, top: int = 3) -> list[list[tuple[str, float]]]:
    """For each cluster 0 .. max(labels), its ``top`` words by c-TF-IDF with their scores, best first
    (ties in alphabetical order); a cluster without words gets an empty list."""
    labels = np.asarray(labels)
    if isinstance(lines, str) or labels.shape != (len(lines),):
        raise ValueError(f"labels must hold one cluster number per line ({len(lines)}), got shape {labels.shape}")
    if len(labels) and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
        raise ValueError("labels must be non-negative integers")
    top = Range(int, 1).check("top", top)
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    tokens = [_label_words(line) for line in lines]
    if not any(tokens):
        return [[] for _ in range(n_classes)]
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer=lambda words: words)  # the lines come split into words already
    counts = vectorizer.fit_transform(tokens)  # [N, V], columns in alphabetical order
    members = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(n_classes, len(labels)))
    frequency = (members @ counts).toarray()  # [K, V] each word's count in each class
    per_class = frequency.sum(axis=1, keepdims=True)
    mean_words = frequency.sum() / n_classes
    scores = frequency / np.maximum(per_class, 1) * np.log1p(mean_words / frequency.sum(axis=0))
    best = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    names = vectorizer.get_feature_names_out()
    return [[(str(names[j]), float(scores[c, j])) for j in best[c] if scores[c, j] > 0] for c in range(n_classes)]
