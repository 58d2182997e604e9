"""The demo: tune an SVM on the digits data set with NNI inside a Docker container."""

import pytest

CONFIG = "sklearn_digits/config.yml"


@pytest.mark.nni_docker(timeout=600)
def test_svm_reaches_high_accuracy(nni_experiment):
    result = nni_experiment.run(CONFIG)

    assert result.status == "DONE"
    assert len(result.trials) == 6
    assert len(result.succeeded) == 6, [(t.id, t.status, t.stderr[-500:]) for t in result.failed]
    for trial in result.trials:
        assert set(trial.parameters) == {"C", "gamma", "kernel"}
        assert len(trial.intermediate_metrics) == 3
        assert 0.0 <= trial.final_metric <= 1.0
        assert f"accuracy {trial.final_metric:.4f}" in trial.trial_log + trial.stdout

    best = result.best_trial
    print(f"best trial {best.id}: accuracy {best.final_metric:.4f} with {best.parameters}")
    assert best.final_metric > 0.95
