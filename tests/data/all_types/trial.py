"""NNI trial whose metrics are a known function of its parameters (score.py).

It also prints the parameters it received, so a test can compare them with the
parameters the result reports for it.
"""

import json

import nni

from score import score


def main() -> None:
    params = nni.get_next_parameter()
    print("parameters " + json.dumps(params, sort_keys=True), flush=True)
    value = score(params)
    for step in range(1, 4):
        nni.report_intermediate_result(value * step)
    nni.report_final_result(value)


if __name__ == "__main__":
    main()
