#!/usr/bin/python3
"""Optuna's TPE (its default sampler, default settings) on the test functions of `r1sharp bench tune`,
with the same ranges, budget and seeds; prints one JSON line per function like R1Sharp's.
Debian's python3-optuna (3.1): run with /usr/bin/python3.
Usage: bench/optuna_tune.py [--budget 60] [--seeds 20] [--functions branin,hartmann6,rosenbrock10,mixed]"""
import argparse, json, math, time

import numpy as np
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(t):
    x1, x2 = t.suggest_float("x1", -5, 10), t.suggest_float("x2", 0, 15)
    b, c, s = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - s) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(t):
    x = [t.suggest_float(f"x{i}", 0, 1) for i in range(6)]
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))


def rosenbrock10(t):
    x = [t.suggest_float(f"x{i}", -2.048, 2.048) for i in range(10)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(9))


BOWLS = {"a": (0.5, 1.0, 2.0), "b": (0.0, -2.0, 4.0), "c": (1.0, 3.0, 1.0), "d": (2.0, 0.0, 5.0)}


def mixed(t):
    kind = t.suggest_categorical("kind", ["a", "b", "c", "d"])
    x = t.suggest_float("x", -5, 5)
    n = t.suggest_int("n", 1, 64, log=True)
    offset, cx, cn = BOWLS[kind]
    return offset + (x - cx) ** 2 + 0.5 * (math.log2(n) - cn) ** 2


FUNCTIONS = {"branin": (branin, 0.397887), "hartmann6": (hartmann6, -3.32237), "rosenbrock10": (rosenbrock10, 0.0), "mixed": (mixed, 0.0)}

parser = argparse.ArgumentParser()
parser.add_argument("--budget", type=int, default=60)
parser.add_argument("--seeds", type=int, default=20)
parser.add_argument("--functions", default=",".join(FUNCTIONS))
args = parser.parse_args()
for name in args.functions.split(","):
    objective, optimum = FUNCTIONS[name]
    best, start = [], time.perf_counter()
    for seed in range(args.seeds):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=args.budget)
        best.append(study.best_value)
    q25, median, q75 = np.quantile(best, [0.25, 0.5, 0.75])
    print(json.dumps({"function": name, "sampler": f"optuna-{optuna.__version__}-tpe", "budget": args.budget, "seeds": args.seeds, "optimum": optimum,
                      "median_best": round(float(median), 6), "q25": round(float(q25), 6), "q75": round(float(q75), 6),
                      "seconds_per_run": round((time.perf_counter() - start) / args.seeds, 4)}))
