"""NNI trial: train an SVM on scikit-learn's digits data set and report its accuracy.

The digits data set ships inside scikit-learn, so the trial needs no download.
"""

import nni
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC


def main() -> None:
    params = nni.get_next_parameter()
    digits = load_digits()
    model = SVC(C=params["C"], gamma=params["gamma"], kernel=params["kernel"])

    # Report each fold as an intermediate result, the mean as the final one.
    scores = cross_val_score(model, digits.data, digits.target, cv=3)
    for score in scores:
        nni.report_intermediate_result(float(score))
    accuracy = float(scores.mean())
    print(f"accuracy {accuracy:.4f} with {params}")
    nni.report_final_result(accuracy)


if __name__ == "__main__":
    main()
