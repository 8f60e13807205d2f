"""Build the bundled teaching sample: context-aware mobile app recommendation (a synthetic Frappe).

The story: each row is one moment in which a user, in some context (time of day, weekday, weather,
device, location, network), was shown an app of some category with some store rating. The labels say
how much they engaged with it: `engagement` (a continuous score) and `clicked` (0/1).

The labels come from a known recipe, so a model's explanations can be checked against the truth:

    engagement = bias + main effects (segment, category, time of day, rating, tiny weekday/network)
               + a few PLANTED pairwise interactions, each a low-rank value_i x value_j table
               + Gaussian noise

Only the pairs in PLANTED carry an interaction; every other field pair (weekday, network, location
with anything, ...) has none. Each table is centred under the sampling frequencies (so it holds no
main effect), scaled to unit RMS, multiplied by its strength (so strength ~ the term's std) and
rounded to 4 decimals; the rounded table is both the one used and the one written to
planted_pairs.json. `clicked` ~ Bernoulli(sigmoid(a * (noiseless signal + own noise - c))).

Run `python sample_data/generate.py` to rebuild sample.csv and planted_pairs.json byte for byte,
or `python sample_data/generate.py --check` to verify the committed files (exit 1 if they differ).
Both commands also cover the second sample, salient.csv and salient_truth.json, whose recipe lives in
generate_salient.py (its data card: SALIENT.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

try:  # run as a script (python sample_data/generate.py): its folder is on sys.path
    import generate_salient
except ImportError:  # imported as afm.sample_data.generate
    from . import generate_salient

SEED = 20170819  # IJCAI 2017
N_ROWS = 30_000
HERE = Path(__file__).resolve().parent
CSV_PATH, JSON_PATH = HERE / "sample.csv", HERE / "planted_pairs.json"

# Categorical fields in column order: value -> sampling probability (every value >= 3%).
FIELDS: dict[str, dict[str, float]] = {
    "user_segment": {"student": 0.25, "commuter": 0.22, "parent": 0.20, "professional": 0.21, "retiree": 0.12},
    "app_category": {
        "news": 0.14,
        "games": 0.18,
        "fitness": 0.10,
        "outdoor": 0.08,
        "music": 0.15,
        "shopping": 0.10,
        "productivity": 0.09,
        "social": 0.16,
    },
    "time_of_day": {"morning": 0.24, "afternoon": 0.26, "evening": 0.32, "night": 0.18},
    "weekday": {"mon": 0.13, "tue": 0.13, "wed": 0.13, "thu": 0.14, "fri": 0.15, "sat": 0.16, "sun": 0.16},
    "weather": {"sunny": 0.40, "cloudy": 0.30, "rain": 0.22, "snow": 0.08},
    "device": {"phone": 0.72, "tablet": 0.28},
    "location": {"home": 0.45, "work": 0.22, "commute": 0.15, "outdoors": 0.18},
    "network": {"wifi": 0.62, "cellular": 0.38},
}
NUMERIC = "app_rating"  # store rating of the app shown, ~N(3.8, 0.6) clipped to [1, 5], 2 decimals
RATING_MEAN, RATING_STD = 3.8, 0.6
BIAS, RATING_SLOPE, NOISE_STD = 3.0, 0.50, 0.80
CLICK_A, CLICK_C, CLICK_NOISE_STD = 2.0, 3.65, 0.5  # clicked ~ Bernoulli(sigmoid(a * (signal + e - c)))

# Main effects (not centred; the bias absorbs their mean). Weekday and network only get tiny ones.
MAIN: dict[str, dict[str, float]] = {
    "user_segment": {"student": 0.35, "commuter": -0.15, "parent": -0.30, "professional": 0.0, "retiree": -0.50},
    "app_category": {
        "news": 0.0,
        "games": 0.65,
        "fitness": -0.35,
        "outdoor": -0.40,
        "music": 0.35,
        "shopping": -0.15,
        "productivity": -0.35,
        "social": 0.50,
    },
    "time_of_day": {"morning": -0.15, "afternoon": -0.35, "evening": 0.40, "night": 0.15},
    "weekday": {"sat": 0.05, "sun": 0.05},
    "network": {"wifi": 0.03, "cellular": -0.03},
}

# Planted pairs (fields in column order): strength and low-rank factors, table = sum_r outer(a_r, b_r).
# A numeric second field means a per-value slope: effect = slope[value] * (app_rating - RATING_MEAN).
PLANTED: list[dict] = [
    {
        "fields": ("app_category", "weather"),
        "strength": 0.90,
        "story": "Outdoor and fitness apps thrive in sunshine and collapse in rain or snow, "
        "when people turn to games and music instead.",
        "factors": [
            (
                {"outdoor": 1.3, "fitness": 0.7, "games": -0.6, "music": -0.5},
                {"sunny": 1.0, "cloudy": 0.2, "rain": -1.0, "snow": -0.8},
            )
        ],
    },
    {
        "fields": ("app_category", "time_of_day"),
        "strength": 0.60,
        "story": "News and productivity apps win the morning, games, music and social apps win the night, "
        "shopping peaks in the evening.",
        "factors": [
            (
                {"news": 1.0, "productivity": 0.8, "games": -0.8, "music": -0.4, "social": -0.5},
                {"morning": 1.0, "afternoon": 0.3, "evening": -0.3, "night": -1.0},
            ),
            (
                {"shopping": 1.0, "social": 0.4, "productivity": -0.5},
                {"evening": 1.0, "afternoon": 0.2, "night": -0.3, "morning": -0.5},
            ),
        ],
    },
    {
        "fields": ("user_segment", "device"),
        "strength": 0.35,
        "story": "Parents and retirees engage more on tablets, commuters and students on phones.",
        "factors": [
            ({"parent": 1.0, "retiree": 0.8, "commuter": -1.0, "student": -0.5}, {"tablet": 1.0, "phone": -1.0})
        ],
    },
    {
        "fields": ("user_segment", NUMERIC),
        "strength": 0.20,
        "story": "Retirees and professionals follow the store rating, students mostly ignore it.",
        "factors": [({"retiree": 1.0, "professional": 0.7, "parent": 0.3, "student": -0.8}, {})],
    },
]


def centred(weights: dict[str, float], probs: dict[str, float]) -> np.ndarray:
    """Vector over the field's values (in FIELDS order), minus its frequency-weighted mean."""
    v = np.array([weights.get(name, 0.0) for name in probs])
    return v - float(np.dot(v, list(probs.values())))


def pair_table(pair: dict) -> np.ndarray:
    """The rounded effect table actually used: centred, unit-RMS, times strength (rows: field i)."""
    fi, fj = pair["fields"]
    pi = np.array(list(FIELDS[fi].values()))
    if fj == NUMERIC:  # a slope per value of fi; scale so the term's std is ~ strength
        slope = sum(centred(a, FIELDS[fi]) for a, _ in pair["factors"])
        rms = np.sqrt(np.dot(pi, slope**2)) * RATING_STD
        return np.round(pair["strength"] * slope / rms, 4)[:, None]
    pj = np.array(list(FIELDS[fj].values()))
    table = sum(np.outer(centred(a, FIELDS[fi]), centred(b, FIELDS[fj])) for a, b in pair["factors"])
    rms = np.sqrt(pi @ table**2 @ pj)
    return np.round(pair["strength"] * table / rms, 4)


def share(x: np.ndarray, total: np.ndarray) -> float:
    """Measured fraction of the label's variance that the component x explains, 4 decimals."""
    return round(float(np.var(x) / np.var(total)), 4)


def build() -> tuple[bytes, bytes]:
    """Draw the data and the labels; return the CSV and JSON bytes (nothing is written here)."""
    rng = np.random.default_rng(SEED)
    codes = {f: rng.choice(len(p), size=N_ROWS, p=list(p.values())) for f, p in FIELDS.items()}
    rating = np.round(np.clip(rng.normal(RATING_MEAN, RATING_STD, N_ROWS), 1.0, 5.0), 2)

    main = RATING_SLOPE * (rating - RATING_MEAN)
    for f, effects in MAIN.items():
        main = main + np.array([effects.get(v, 0.0) for v in FIELDS[f]])[codes[f]]

    pairs_out, terms = [], []
    for pair in PLANTED:
        fi, fj = pair["fields"]
        table = pair_table(pair)
        vi = list(FIELDS[fi])
        if fj == NUMERIC:
            term = table[codes[fi], 0] * (rating - RATING_MEAN)
            effects = {f"{v}|{NUMERIC}": float(table[a, 0]) for a, v in enumerate(vi)}
            form = f"slope: effect = value's slope * ({NUMERIC} - {RATING_MEAN})"
        else:
            term = table[codes[fi], codes[fj]]
            effects = {f"{v}|{w}": float(table[a, b]) for a, v in enumerate(vi) for b, w in enumerate(FIELDS[fj])}
            form = "table: effect = effects['value_i|value_j']"
        terms.append(term)
        pairs_out.append(
            {"fields": [fi, fj], "strength": pair["strength"], "effects": effects, "form": form, "story": pair["story"]}
        )

    interactions = np.sum(terms, axis=0)
    noise = rng.normal(0.0, NOISE_STD, N_ROWS)
    signal = BIAS + main + interactions
    engagement = np.round(signal + noise, 4) + 0.0  # + 0.0 turns -0.0 into 0.0
    click_logit = CLICK_A * (signal + rng.normal(0.0, CLICK_NOISE_STD, N_ROWS) - CLICK_C)
    clicked = (rng.random(N_ROWS) < 1.0 / (1.0 + np.exp(-click_logit))).astype(np.int64)

    for out, term in zip(pairs_out, terms, strict=True):
        out["variance_share"] = share(term, engagement)
    pairs_out.sort(key=lambda p: -p["strength"])

    df = pd.DataFrame({f: np.array(list(FIELDS[f]), dtype=object)[codes[f]] for f in FIELDS})
    df[NUMERIC] = [f"{x:.2f}" for x in rating]
    df["engagement"] = [f"{x:.4f}" for x in engagement]
    df["clicked"] = clicked
    csv_bytes = df.to_csv(index=False, lineterminator="\n").encode("utf-8")

    meta = {
        "fields": [*FIELDS, NUMERIC],
        "labels": {"regression": "engagement", "binary": "clicked"},
        "planted_pairs": pairs_out,
        "noise_std": NOISE_STD,
        "seed": SEED,
        "n_rows": N_ROWS,
        "bias": BIAS,
        "numeric": {"field": NUMERIC, "mean": RATING_MEAN, "std": RATING_STD, "main_slope": RATING_SLOPE},
        "click_model": {
            "a": CLICK_A,
            "c": CLICK_C,
            "noise_std": CLICK_NOISE_STD,
            "positive_rate": round(float(clicked.mean()), 4),
        },
        "variance_shares": {
            "main_effects": share(main, engagement),
            "interactions": share(interactions, engagement),
            "noise": share(noise, engagement),
        },
        "engagement_std": round(float(np.std(engagement)), 4),
    }
    json_bytes = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return csv_bytes, json_bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files instead of writing them")
    args = parser.parse_args(argv)
    outputs = dict(zip((CSV_PATH, JSON_PATH), build(), strict=True))
    outputs.update(generate_salient.outputs())
    if args.check:
        stale = [p.name for p, data in outputs.items() if not p.is_file() or p.read_bytes() != data]
        if stale:
            print(
                f"sample_data is out of date: {', '.join(stale)} differ from a fresh build; "
                "run `python sample_data/generate.py`",
                file=sys.stderr,
            )
            return 1
        print("sample_data is up to date")
        return 0
    for path, data in outputs.items():
        path.write_bytes(data)
        print(f"wrote {path.name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
