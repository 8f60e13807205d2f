"""Build the second teaching sample, where attention is NEEDED: a synthetic streaming "movie night".

The story: each row is one session on a streaming service. A viewer of some profile, at some time slot,
on some device, in some company, started a title of some genre, reached from some entry point. The labels
say how much of it they watched: `watch_score` (continuous) and `finished` (0/1, watched to the end).
Usually the viewer's own tastes decide (genre, hour, device); but a few moments override the viewer.

Each field pair "votes" on the score, and the row's pair term is a WEIGHTED AVERAGE of the votes, with
row-dependent weights (a softmax over the row's P field pairs, exactly an AFM's attention):

    watch_score = bias + main effects + sum_ij w_ij(row) g_ij(x_i, x_j) + Gaussian noise
    w_ij(row)   = exp(sigma_ij) / sum_kl exp(sigma_kl)           (the row's P = F(F-1)/2 pairs)
    sigma_ij    = SALIENCE (5.0) for a DECISIVE value pair (say genre=animation with company=kids),
                  0 for every other value pair
    g_ij        = P * t_ij(x_i, x_j) for an ordinary value pair, where t_ij is a planted low-rank
                  "taste" table like the first sample's (0 for the field pairs without one);
                  the decisive pair's own VERDICT for a decisive value pair

On a row without a decisive pair every w_ij is 1/P, so the pair term is sum_ij t_ij: the additive FM
of the first sample. On a row with one, that pair takes w = e^5 / (e^5 + P - 1) = 0.914 of the weight
(F = 6 fields, P = 15 pairs), its verdict becomes most of the pair term, and every other pair's vote is
scaled down to 15 * 0.0062 = 9% of its usual size. Every decisive pair involves the genre, each with a
different genre, so a row holds at most one. The suppression multiplies a pair's effect by whether ANOTHER
pair is decisive: an effect of three or more fields that a sum of pair terms (FM) cannot represent, and
that a softmax over the row's pairs (AFM) can. `finished` ~ Bernoulli(sigmoid(a * (noiseless signal + own
noise - c))).

The tables are rounded to 4 decimals, and the rounded tables are both the ones used and the ones in
salient_truth.json; the per-row weights are recomputed exactly from a row and salient_truth.json by
``afm.datasets.salient_weights`` (not stored per row: 15 numbers a row would about double the files).
``generate.py`` builds this sample together with the first one (``--check`` verifies both).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240601
N_ROWS = 20_000
HERE = Path(__file__).resolve().parent
CSV_PATH, JSON_PATH = HERE / "salient.csv", HERE / "salient_truth.json"

# Categorical fields in column order: value -> sampling probability. All drawn independently.
FIELDS: dict[str, dict[str, float]] = {
    "viewer": {"teen": 0.18, "student": 0.20, "parent": 0.24, "professional": 0.24, "retiree": 0.14},
    "genre": {
        "animation": 0.21,
        "comedy": 0.12,
        "drama": 0.12,
        "action": 0.10,
        "horror": 0.15,
        "documentary": 0.14,
        "live_sport": 0.16,
    },
    "time_slot": {"morning": 0.12, "afternoon": 0.18, "prime_time": 0.48, "late_night": 0.22},
    "device": {"tv": 0.38, "laptop": 0.18, "tablet": 0.10, "phone": 0.34},
    "company": {"alone": 0.28, "partner": 0.18, "kids": 0.30, "friends": 0.24},
    "entry": {"home_row": 0.40, "search": 0.25, "autoplay": 0.20, "trailer": 0.15},
}
LABELS = {"regression": "watch_score", "binary": "finished"}
BIAS, NOISE_STD = 3.0, 0.5
FINISH_A, FINISH_C, FINISH_NOISE_STD = 2.0, 3.3, 0.4  # finished ~ Bernoulli(sigmoid(a * (signal + e - c)))
SALIENCE = 5.0  # sigma of a decisive value pair; every other pair has 0

# Main effects (not centred; the bias absorbs their mean). `entry` has none, nor any interaction: irrelevant.
MAIN: dict[str, dict[str, float]] = {
    "viewer": {"teen": 0.20, "student": 0.10, "parent": -0.20, "professional": -0.10, "retiree": 0.15},
    "genre": {
        "animation": 0.10,
        "comedy": 0.25,
        "drama": 0.0,
        "action": 0.15,
        "horror": -0.20,
        "documentary": -0.30,
        "live_sport": 0.20,
    },
    "time_slot": {"morning": -0.40, "afternoon": -0.10, "prime_time": 0.30, "late_night": 0.0},
    "device": {"tv": 0.30, "laptop": 0.0, "tablet": -0.10, "phone": -0.30},
}

# The usual tastes: low-rank value x value tables (as the first sample's), centred under the sampling
# frequencies, unit RMS, times strength; they are the votes of the ordinary value pairs.
TASTES: list[dict] = [
    {
        "fields": ("viewer", "genre"),
        "strength": 1.20,
        "story": "Teens pick horror and action, retirees documentaries and drama, students comedy.",
        "factors": [
            (
                {"teen": 1.0, "student": 0.5, "retiree": -1.0, "professional": -0.3},
                {"horror": 1.0, "action": 0.8, "comedy": 0.3, "documentary": -1.0, "drama": -0.7},
            ),
            ({"student": 1.0, "parent": 0.4, "retiree": -0.5}, {"comedy": 1.0, "animation": 0.4, "drama": -0.5}),
        ],
    },
    {
        "fields": ("viewer", "time_slot"),
        "strength": 1.20,
        "story": "Teens and students watch late at night, retirees in the morning and afternoon, parents at prime "
        "time once the house is quiet.",
        "factors": [
            (
                {"teen": 1.0, "student": 1.0, "professional": 0.2, "retiree": -1.0},
                {"late_night": 1.0, "prime_time": 0.2, "afternoon": -0.5, "morning": -1.0},
            ),
            ({"parent": 1.0, "professional": 0.5, "retiree": -0.3}, {"prime_time": 1.0, "afternoon": -0.6}),
        ],
    },
    {
        "fields": ("viewer", "device"),
        "strength": 1.00,
        "story": "Teens and students watch on phones and laptops, parents and retirees on the TV.",
        "factors": [
            (
                {"teen": 1.0, "student": 0.8, "parent": -0.6, "retiree": -1.0},
                {"phone": 1.0, "laptop": 0.7, "tablet": 0.0, "tv": -0.8},
            )
        ],
    },
]

# The decisive value pairs: when one is in the row it takes most of the weight and its verdict replaces
# the row's usual pair votes. Each has a different genre, so a row holds at most one.
DECISIVE: list[dict] = [
    {
        "fields": ("genre", "company"),
        "values": ("animation", "kids"),
        "verdict": 2.0,
        "story": "Family film night: when the kids are watching an animation, they decide. It is watched to "
        "the end, whoever the grown-up is, whatever the device or the hour.",
    },
    {
        "fields": ("genre", "time_slot"),
        "values": ("live_sport", "prime_time"),
        "verdict": 2.5,
        "story": "The live match: live sport in prime time is watched to the final whistle, whatever the viewer's "
        "usual tastes.",
    },
    {
        "fields": ("genre", "company"),
        "values": ("horror", "friends"),
        "verdict": 1.5,
        "story": "Horror with friends: a party ritual, seen to the end even by those who never watch horror alone.",
    },
    {
        "fields": ("genre", "company"),
        "values": ("drama", "kids"),
        "verdict": -1.5,
        "story": "A slow drama with the kids in the room is switched off, whoever chose it.",
    },
    {
        "fields": ("genre", "device"),
        "values": ("documentary", "phone"),
        "verdict": -2.0,
        "story": "A documentary on a phone is abandoned within minutes, even by the retiree who loves documentaries.",
    },
]


def centred(weights: dict[str, float], probs: dict[str, float]) -> np.ndarray:
    """Vector over the field's values (in FIELDS order), minus its frequency-weighted mean."""
    v = np.array([weights.get(name, 0.0) for name in probs])
    return v - float(np.dot(v, list(probs.values())))


def taste_table(pair: dict) -> np.ndarray:
    """The rounded taste table actually used: centred, unit-RMS, times strength (rows: field i)."""
    fi, fj = pair["fields"]
    pi, pj = np.array(list(FIELDS[fi].values())), np.array(list(FIELDS[fj].values()))
    table = sum(np.outer(centred(a, FIELDS[fi]), centred(b, FIELDS[fj])) for a, b in pair["factors"])
    rms = np.sqrt(pi @ table**2 @ pj)
    return np.round(pair["strength"] * table / rms, 4)


def field_pairs() -> list[tuple[int, int]]:
    """The P field pairs (i < j) in torch.triu_indices(F, F, 1) order: row-major."""
    f = len(FIELDS)
    return [(i, j) for i in range(f) for j in range(i + 1, f)]


def share(x: np.ndarray, total: np.ndarray) -> float:
    """Measured fraction of the label's variance that the component x explains, 4 decimals."""
    return round(float(np.var(x) / np.var(total)), 4)


def pair_terms(codes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row and field pair: salience sigma [N, P], vote g [N, P], weight w [N, P] and taste t [N, P]."""
    names = list(FIELDS)
    pairs = field_pairs()
    n, p = len(codes[names[0]]), len(pairs)
    sigma, vote, taste = np.zeros((n, p)), np.zeros((n, p)), np.zeros((n, p))
    tables = {tuple(t["fields"]): taste_table(t) for t in TASTES}
    for q, (i, j) in enumerate(pairs):
        fi, fj = names[i], names[j]
        if (fi, fj) in tables:
            taste[:, q] = tables[fi, fj][codes[fi], codes[fj]]
        vote[:, q] = p * taste[:, q]
        for d in DECISIVE:
            if tuple(d["fields"]) == (fi, fj):
                hit = (codes[fi] == list(FIELDS[fi]).index(d["values"][0])) & (
                    codes[fj] == list(FIELDS[fj]).index(d["values"][1])
                )
                sigma[hit, q] = SALIENCE
                vote[hit, q] = d["verdict"]
    e = np.exp(sigma - sigma.max(axis=1, keepdims=True))
    weight = e / e.sum(axis=1, keepdims=True)
    return sigma, vote, weight, taste


def build() -> tuple[bytes, bytes]:
    """Draw the data and the labels; return the CSV and JSON bytes (nothing is written here)."""
    for d in DECISIVE:
        fi, fj = d["fields"]
        assert list(FIELDS).index(fi) < list(FIELDS).index(fj), d  # fields in column order
    genres = [d["values"][0] for d in DECISIVE]
    assert all(d["fields"][0] == "genre" for d in DECISIVE) and len(set(genres)) == len(genres)

    rng = np.random.default_rng(SEED)
    codes = {f: rng.choice(len(p), size=N_ROWS, p=list(p.values())) for f, p in FIELDS.items()}
    main = np.zeros(N_ROWS)
    for f, effects in MAIN.items():
        main = main + np.array([effects.get(v, 0.0) for v in FIELDS[f]])[codes[f]]
    sigma, vote, weight, taste = pair_terms(codes)
    pair_term = (weight * vote).sum(axis=1)
    decisive = sigma.max(axis=1) > 0
    noise = rng.normal(0.0, NOISE_STD, N_ROWS)
    signal = BIAS + main + pair_term
    score = np.round(signal + noise, 4) + 0.0  # + 0.0 turns -0.0 into 0.0
    logit = FINISH_A * (signal + rng.normal(0.0, FINISH_NOISE_STD, N_ROWS) - FINISH_C)
    finished = (rng.random(N_ROWS) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    df = pd.DataFrame({f: np.array(list(FIELDS[f]), dtype=object)[codes[f]] for f in FIELDS})
    df[LABELS["regression"]] = [f"{x:.4f}" for x in score]
    df[LABELS["binary"]] = finished
    csv_bytes = df.to_csv(index=False, lineterminator="\n").encode("utf-8")

    # how far the decisive pairs move a row from the additive picture (every weight 1/P): 0 on ordinary rows
    override = pair_term - taste.sum(axis=1)
    pairs = field_pairs()
    names = list(FIELDS)
    p = len(pairs)
    w_top = float(np.exp(SALIENCE) / (np.exp(SALIENCE) + p - 1))
    decisive_out = []
    for d in DECISIVE:
        fi, fj = d["fields"]
        rows = (codes[fi] == list(FIELDS[fi]).index(d["values"][0])) & (
            codes[fj] == list(FIELDS[fj]).index(d["values"][1])
        )
        decisive_out.append(
            {
                "fields": [fi, fj],
                "values": list(d["values"]),
                "pair_index": pairs.index((names.index(fi), names.index(fj))),
                "salience": SALIENCE,
                "verdict": d["verdict"],
                "rows": int(rows.sum()),
                "story": d["story"],
            }
        )
    tastes_out = []
    for t in TASTES:
        fi, fj = t["fields"]
        table = taste_table(t)
        effects = {f"{v}|{w}": float(table[a, b]) for a, v in enumerate(FIELDS[fi]) for b, w in enumerate(FIELDS[fj])}
        tastes_out.append(
            {
                "fields": [fi, fj],
                "pair_index": pairs.index((names.index(fi), names.index(fj))),
                "strength": t["strength"],
                "effects": effects,
                "story": t["story"],
            }
        )
    meta = {
        "name": "salient",
        "fields": names,
        "labels": dict(LABELS),
        "pairs": [[names[i], names[j]] for i, j in pairs],
        "salience": SALIENCE,
        "decisive_pairs": decisive_out,
        "tastes": tastes_out,
        "decisive_weight": round(w_top, 6),
        "other_weight_on_decisive_rows": round((1 - w_top) / (p - 1), 6),
        "decisive_row_share": round(float(decisive.mean()), 4),
        "recipe": {
            "pair_term": "sum_ij w_ij * g_ij, w = softmax over the row's pairs of sigma_ij",
            "sigma": "salience for a decisive value pair, else 0",
            "vote": "g_ij = P * effects['value_i|value_j'] of a taste (0 for a pair without one); "
            "a decisive value pair's verdict",
        },
        "main_effects": MAIN,
        "bias": BIAS,
        "noise_std": NOISE_STD,
        "finish_model": {
            "a": FINISH_A,
            "c": FINISH_C,
            "noise_std": FINISH_NOISE_STD,
            "positive_rate": round(float(finished.mean()), 4),
        },
        "variance_shares": {
            "main_effects": share(main, score),
            "pair_term": share(pair_term, score),
            "override (pair term minus the usual additive tastes; 0 on ordinary rows)": share(override, score),
            "noise": share(noise, score),
        },
        "watch_score_std": round(float(np.std(score)), 4),
        "seed": SEED,
        "n_rows": N_ROWS,
    }
    json_bytes = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return csv_bytes, json_bytes


def outputs() -> dict[Path, bytes]:
    """path -> the bytes a fresh build gives."""
    return dict(zip((CSV_PATH, JSON_PATH), build(), strict=True))
