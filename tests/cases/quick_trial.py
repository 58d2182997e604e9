"""NNI trial for the plugin's tests: sleep about a second, then report ``x`` as the metric.

With the parameter ``fail`` set to true it writes a message to stderr and exits 3.
"""

import sys
import time

import nni


def main() -> None:
    params = nni.get_next_parameter()
    time.sleep(float(params.get("sleep", 1.0)))
    if params.get("fail"):
        print(f"quick_trial: failing on purpose with x={params.get('x')}", file=sys.stderr)
        sys.exit(3)
    nni.report_final_result(float(params.get("x", 0.5)))


if __name__ == "__main__":
    main()
