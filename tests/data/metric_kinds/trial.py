"""NNI trial that reports one kind of metric, chosen by its ``kind`` parameter.

Each kind exercises one decoding case: a float, a dict with ``default``, NaN,
infinity and negative infinity. Every trial also reports three intermediate
metrics of the same kind, in order.
"""

import math

import nni

FINAL = {
    "float": 0.75,
    "dict": {"default": 0.5, "loss": 1.25},
    "nan": math.nan,
    "inf": math.inf,
    "neginf": -math.inf,
}


def intermediate(kind: str, step: int):
    if kind == "dict":
        return {"default": 0.1 * step, "loss": 2.0 - step}
    if kind == "float":
        return 0.25 * step
    return FINAL[kind]


def main() -> None:
    params = nni.get_next_parameter()
    kind = params["kind"]
    for step in (1, 2, 3):
        nni.report_intermediate_result(intermediate(kind, step))
    print(f"reporting kind {kind}")
    nni.report_final_result(FINAL[kind])


if __name__ == "__main__":
    main()
