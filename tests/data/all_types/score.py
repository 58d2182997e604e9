"""The known function that the trial reports as its metric; the test imports it too."""


def score(params: dict) -> float:
    kernel = params["block"]["kernel"] if params["block"]["_name"] == "conv" else -1
    return (
        params["layers"] + params["dropout"] + params["width"] / 100 + params["lr"] + params["batch"] / 1000
        + params["shift"] + params["offset"] + params["scale"] + params["steps"] / 10
        + (1 if params["optimizer"] == "adam" else 0) + kernel
    )
