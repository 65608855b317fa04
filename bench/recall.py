"""What generated lines recall from the corpus, by each measure of nearness, on the shipped checkpoint.

    python bench/recall.py

The corpus is all 95,000 lines of data/poetry, encoded by their posterior means. The generated lines
are 1,000 prior samples and 16 neighbours (noise 0.5) of each of the first 50 test lines, all decoded
by beam search (width 4). For each latent measure (the generated line's posterior mean against the
corpus codes, as the explorer compares them) and for the word measure (BM25 over the generated
line's words) it prints how often the most frequent nearest line wins, how often a neighbour's
nearest line is the test line it varies ("source"), and how often the nearest line shares a content
word with the generated line. Goals: no neighbour set has one corpus line win more than 4 of its 16;
the word measure's line shares a content word in at least 90% of cases.

The test lines are themselves on the map, so a neighbour set's nearest line is mostly its own source,
and sixteen neighbours at noise 0.5 often decode to a few distinct lines. So the neighbour sets are
also scored against the corpus without the test split ("unseen": the source is not there to win),
and counting each distinct decoded line of a set once ("distinct"). Where one line wins such a set, it
is worth knowing whether it is a hub or the source's own nearest line there ("near source": how often
the line that wins an unseen set is what the source itself finds by the same measure). A decoded line
has one nearest line by any measure, so a set in which one line is decoded more than 4 times cannot
meet the goal by any measure: the most copies of one line in a set is printed too.

Prints one JSON object per figure, then the table.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vae_core  # noqa: E402
from vae_core.data import read_lines  # noqa: E402
from vae_core.properties import content_words, normalise  # noqa: E402
from vae_core.recall import MEASURES, CodeIndex, WordIndex  # noqa: E402

PRIOR, SETS, PER_SET, NOISE, WIDTH = 1000, 50, 16, 0.5, 4
MOST_WINS_IN_A_SET, SHARING = 4, 0.9  # the goals


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def timed(fn, *args):
    """``fn(*args)`` and the seconds it took."""
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def sharing(generated: list[str], corpus: list[str], index: np.ndarray) -> float:
    """The fraction of generated lines whose nearest corpus line shares a content word with them."""
    return float(np.mean([i >= 0 and bool(set(content_words(g)) & set(content_words(corpus[i])))
                          for g, i in zip(generated, index)]))


def most_wins(index: np.ndarray) -> int:
    """How many times the most frequent nearest line is the nearest."""
    return int(np.unique(index, return_counts=True)[1].max())


def left_out_source(latent: CodeIndex, codes, neighbour_mu, test_mu, seen: int, measure: str, probes: int = 5000):
    """The neighbour sets scored with only their own source left out of the corpus: how many are won
    more than 4 times, and whether their winners are hubs (how many of ``probes`` corpus lines have
    the winner as their own nearest other line, at most) or lines near the source (among its 7 nearest)."""
    near = latent.nearest(neighbour_mu, 2, measure)[0].reshape(SETS, PER_SET, 2)
    source = seen + np.arange(SETS)[:, None]  # the test lines' places in the corpus: the test split is last
    found = np.where(near[..., 0] == source, near[..., 1], near[..., 0])
    probe = torch.as_tensor(np.random.default_rng(0).choice(len(codes), probes, replace=False))
    hubs = np.bincount(latent.nearest(codes[probe], 2, measure)[0][:, 1], minlength=len(codes))
    own = latent.nearest(test_mu, 8, measure)[0][:, 1:]  # the source's 7 nearest other lines
    winners = []  # (set, the line winning it) where one line wins more than the goal allows
    for s, row in enumerate(found):
        lines, counts = np.unique(row, return_counts=True)
        if counts.max() > MOST_WINS_IN_A_SET:
            winners.append((s, lines[counts.argmax()]))
    report(f"recall by {measure}: neighbour sets won more than {MOST_WINS_IN_A_SET} times, the source left out",
           len(winners), f"of {SETS}", probes=probes,
           winners_most_nearest_of_probes=int(max((hubs[w] for _, w in winners), default=0)),
           winners_among_the_source_7_nearest=sum(w in own[s] for s, w in winners))


def main() -> None:
    vae = vae_core.load()
    corpus = [line for split in ("train", "valid", "test") for line in read_lines(ROOT / f"data/poetry/{split}.txt")]
    test = read_lines(ROOT / "data/poetry/test.txt")[:SETS]
    codes, seconds = timed(vae.mu, corpus)
    report(f"encode the corpus ({len(corpus)} lines)", seconds, "s")
    words, seconds = timed(WordIndex, corpus)
    report("build the word index (BM25)", seconds, "s")
    latent, seconds = timed(CodeIndex, codes)
    report("build the code index (with its hubness)", seconds, "s")
    seen = len(corpus) - len(read_lines(ROOT / "data/poetry/test.txt"))  # train and valid come first
    unseen_words, unseen_latent = WordIndex(corpus[:seen]), CodeIndex(codes[:seen])

    prior_z = vae.prior(PRIOR, seed=0)
    neighbour_z = torch.cat([vae.neighbours(mu, PER_SET, NOISE, seed=0) for mu in vae.mu(test)])
    (prior_lines, neighbour_lines), seconds = timed(lambda: (vae.beam(prior_z, width=WIDTH),
                                                             vae.beam(neighbour_z, width=WIDTH)))
    report(f"decode {PRIOR + SETS * PER_SET} lines (beam {WIDTH})", seconds, "s")

    # as the explorer does, a generated line's code is its own posterior mean
    (prior_mu, neighbour_mu), seconds = timed(lambda: (vae.mu(prior_lines), vae.mu(neighbour_lines)))
    test_mu = vae.mu(test)
    report(f"encode the {PRIOR + SETS * PER_SET} generated lines", seconds, "s")

    def searches(words: WordIndex, latent: CodeIndex) -> dict:
        found = {measure: (lambda mu, lines, m=measure: latent.nearest(mu, 1, m)[0][:, 0]) for measure in MEASURES}
        found["words (BM25)"] = lambda mu, lines: words.best(lines)[0]
        return found

    rows = []
    for (name, search), unseen in zip(searches(words, latent).items(), searches(unseen_words, unseen_latent).values()):
        _, query_16 = timed(search, prior_mu[:PER_SET], prior_lines[:PER_SET])
        prior_index, query_1000 = timed(search, prior_mu, prior_lines)
        sets = search(neighbour_mu, neighbour_lines).reshape(SETS, PER_SET)
        set_wins = [most_wins(s) for s in sets]
        own = np.mean([normalise(corpus[i]) == normalise(source) for s, source in zip(sets, test) for i in s])
        unseen_sets = unseen(neighbour_mu, neighbour_lines).reshape(SETS, PER_SET)
        decoded = np.array(neighbour_lines, dtype=object).reshape(SETS, PER_SET)
        # a decoded line always has the same nearest line, so each distinct line counts once
        distinct = [most_wins(np.array(list(dict(zip(lines, s)).values()))) for s, lines in zip(unseen_sets, decoded)]
        winners = [lines[counts.argmax()] for lines, counts in (np.unique(s, return_counts=True) for s in unseen_sets)]
        near_source = np.mean(np.array(winners) == unseen(test_mu, test))
        row = {"measure": name, "prior_top": most_wins(prior_index), "prior_distinct": len(np.unique(prior_index)),
               "prior_sharing": sharing(prior_lines, corpus, prior_index), "set_top_max": max(set_wins),
               "set_top_mean": float(np.mean(set_wins)),
               "set_sharing": sharing(neighbour_lines, corpus, sets.ravel()), "set_source": float(own),
               "unseen_top_max": max(most_wins(s) for s in unseen_sets), "distinct_top_max": max(distinct),
               "near_source": float(near_source),
               "query_16_ms": 1000 * query_16, "query_1000_s": query_1000}
        rows.append(row)
        report(f"recall by {name}: most wins in a neighbour set", row["set_top_max"], f"of {PER_SET}",
               goal=MOST_WINS_IN_A_SET, met=row["set_top_max"] <= MOST_WINS_IN_A_SET)
        report(f"recall by {name}: most wins in a neighbour set, unseen source", row["unseen_top_max"], f"of {PER_SET}")
        report(f"recall by {name}: most wins in a neighbour set, unseen source, distinct lines",
               row["distinct_top_max"], "distinct lines")
        report(f"recall by {name}: the line winning an unseen set is the source's own nearest line",
               row["near_source"], "fraction of sets")
        report(f"recall by {name}: nearest line shares a content word (prior)", row["prior_sharing"], "fraction",
               goal=SHARING, met=row["prior_sharing"] >= SHARING)
        report(f"recall by {name}: 1,000 queries", query_1000, "s")
    decoded_sets = np.array(neighbour_lines, dtype=object).reshape(SETS, PER_SET)
    for measure in MEASURES:
        left_out_source(latent, codes, neighbour_mu, test_mu, seen, measure)
    distinct_lines = [len(set(lines)) for lines in decoded_sets]
    report("neighbour sets: distinct decoded lines of 16 (mean, min)", float(np.mean(distinct_lines)), "lines",
           min=min(distinct_lines))
    # a line has one nearest line by any measure, so no measure wins a set fewer times than its commonest line
    repeats = [max(Counter(lines).values()) for lines in decoded_sets]
    report("neighbour sets: most copies of one decoded line in a set (the fewest wins any measure can have)",
           max(repeats), f"of {PER_SET}", sets_above_goal=sum(r > MOST_WINS_IN_A_SET for r in repeats))

    print(f"\n{'measure':<14}{'prior: top/1000':>16}{'distinct':>10}{'shares':>8}"
          f"{'sets: top max':>15}{'mean':>6}{'source':>8}{'shares':>8}{'unseen':>8}{'distinct':>9}{'near src':>9}"
          f"{'16 q ms':>9}{'1000 q s':>10}")
    for r in rows:
        print(f"{r['measure']:<14}{r['prior_top']:>16}{r['prior_distinct']:>10}{r['prior_sharing']:>8.3f}"
              f"{r['set_top_max']:>15}{r['set_top_mean']:>6.2f}{r['set_source']:>8.3f}{r['set_sharing']:>8.3f}"
              f"{r['unseen_top_max']:>8}{r['distinct_top_max']:>9}{r['near_source']:>9.2f}"
              f"{r['query_16_ms']:>9.1f}{r['query_1000_s']:>10.3f}")


if __name__ == "__main__":
    main()
