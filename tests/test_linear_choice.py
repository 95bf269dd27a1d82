"""How the wide branch plans its search: cross-validation, the holdout or no search, on which rows
(training/linear_choice.py)."""

import numpy as np

from textclf.training.linear_choice import CV_MAX_COST, SEARCH_MAX_COST, plan, splits_of

FULL, TWO_STAGE = 16, 7  # 4 feature sets x 2 C x 2 class weightings; or 4 feature sets, then 3 more C and weightings.


def rows_of(train: list, valid: list) -> tuple[np.ndarray, int]:
    """Targets with ``train[c]`` training rows and ``valid[c]`` validation rows of class c, training rows first."""
    targets = [np.repeat(np.arange(len(counts)), counts) for counts in (train, valid)]
    return np.concatenate(targets), int(sum(train))


def test_small_data_is_cross_validated_on_every_row_in_the_strongest_baselines_folds():
    targets, train_count = rows_of([400, 400], [100, 100])
    chosen = plan(targets, train_count, cost_per_row=10.0, seed=0)
    assert (chosen.method, chosen.folds, chosen.grid, chosen.rows.tolist()) == (
        "cross-validation", 5, "full", list(range(1000)))
    assert chosen.why == "5-fold cross-validated macro-F1 on 1,000 rows, full grid"
    # Unshuffled stratified folds (GridSearchCV's): each class's rows in order, cut in 5 runs.
    folds = splits_of(chosen, targets, train_count)
    class_0, class_1 = [*range(400), *range(800, 900)], [*range(400, 800), *range(900, 1000)]
    assert [held.tolist() for _, held in folds] == [
        sorted(class_0[100 * k:100 * (k + 1)] + class_1[100 * k:100 * (k + 1)]) for k in range(5)]
    # In the file the validation rows came first and the training rows in reverse: the folds follow the file's
    # order, and so do the fit rows.
    order = np.concatenate([np.arange(999, 199, -1), np.arange(200)])
    in_file = splits_of(chosen, targets, train_count, order)
    assert sorted(in_file[0][1].tolist()) == list(range(800, 1000))  # The file's first 100 rows of each class.
    assert in_file[0][0].tolist() == list(range(799, -1, -1))  # The training rows, in the file's order.
    assert sorted(in_file[1][1].tolist()) == [*range(300, 400), *range(700, 800)]


def test_costlier_data_gets_the_two_stage_grid_in_fewer_folds_then_the_holdout(
        monkeypatch):
    from textclf.training import linear_choice

    targets, train_count = rows_of([400, 400], [100, 100])
    full = SEARCH_MAX_COST / (FULL * 4 * len(targets))  # 5-fold cross-validation fits 4 rows in 5, 5 times.
    assert plan(targets, train_count, full * 0.999, seed=0).grid == "full"
    two_stage = plan(targets, train_count, full * 1.01, seed=0)
    assert (two_stage.method, two_stage.grid, two_stage.folds) == ("cross-validation", "two-stage", 5)
    assert two_stage.why == "5-fold cross-validated macro-F1 on 1,000 rows, two-stage grid"
    # k folds fit (k - 1) rows in k, k times: as the cost per row grows, 4, then 3, then 2 folds fit the budget.
    for folds in (5, 4, 3, 2):
        at_budget = CV_MAX_COST / (TWO_STAGE * (folds - 1) * len(targets))
        chosen = plan(targets, train_count, at_budget * 0.999, seed=0)
        assert (chosen.method, chosen.folds, chosen.grid, len(chosen.rows)) == (
            "cross-validation", folds, "two-stage", 1000)
        assert chosen.why == f"{folds}-fold cross-validated macro-F1 on 1,000 rows, two-stage grid"
        if folds > 2:
            assert plan(targets, train_count, at_budget * 1.001, seed=0).folds == folds - 1
    # Above 2 folds' cost the holdout, which fits every training row here where its own budget holds them.
    at_budget = CV_MAX_COST / (TWO_STAGE * len(targets))
    monkeypatch.setattr(linear_choice, "SEARCH_MAX_COST", CV_MAX_COST)
    chosen = plan(targets, train_count, at_budget * 1.01, seed=0)
    assert (chosen.method, chosen.folds, chosen.grid, chosen.rows.tolist()) == ("holdout", 1, "two-stage",
                                                                               list(range(1000)))
    [(fitted, held)] = splits_of(chosen, targets, train_count)
    assert fitted.tolist() == list(range(800)) and held.tolist() == list(range(800, 1000))
    assert chosen.why == ("macro-F1 on the 200 validation rows, fitted on 800 training rows, two-stage grid; "
                          f"2-fold cross-validation would cost {CV_MAX_COST * 1.01:,.0f}, above {CV_MAX_COST:,}")


def test_fewer_folds_keep_every_class_in_every_held_fold():
    targets, train_count = rows_of([400, 7], [100, 2])
    chosen = plan(targets, train_count, CV_MAX_COST / (TWO_STAGE * 2 * len(targets)) * 0.999, seed=0)
    assert (chosen.method, chosen.folds, chosen.grid) == ("cross-validation", 3, "two-stage")
    folds = splits_of(chosen, targets, train_count)
    assert [np.count_nonzero(targets[held] == 1) for _, held in folds] == [3, 3, 3]
    assert sorted(np.concatenate([held for _, held in folds]).tolist()) == list(range(509))


def test_a_class_of_three_rows_gives_three_folds_as_the_strongest_baseline_makes():
    targets, train_count = rows_of([40, 3], [10, 0])
    chosen = plan(targets, train_count, cost_per_row=10.0, seed=0)
    assert (chosen.method, chosen.folds) == ("cross-validation", 3)
    folds = splits_of(chosen, targets, train_count)
    assert [np.count_nonzero(targets[held] == 1) for _, held in folds] == [1, 1, 1]  # Every class in every fold.


def test_the_holdouts_training_rows_are_drawn_down_to_the_budget():
    targets, train_count = rows_of([3000, 1000], [10, 1])
    cost = SEARCH_MAX_COST / (TWO_STAGE * 500.5)  # The budget holds 500 training rows.
    chosen = plan(targets, train_count, cost, seed=3)
    fitted = chosen.rows[chosen.rows < train_count]
    drawn = np.random.default_rng(3).choice(np.arange(4000), 500, replace=False)
    assert chosen.method == "holdout" and fitted.tolist() == sorted(drawn.tolist())
    assert chosen.rows[chosen.rows >= train_count].tolist() == list(range(4000, 4011))  # Every validation row.
    assert "fitted on 500 training rows" in chosen.why


def test_without_validation_rows_of_a_class_costly_data_is_cross_validated_on_drawn_rows():
    targets, train_count = rows_of([3000, 3], [10, 0])
    cost = SEARCH_MAX_COST / (TWO_STAGE * 2 * 300.5)  # 3 folds (the rarer class has 3 rows); room for 300 rows.
    chosen = plan(targets, train_count, cost, seed=0)
    assert (chosen.method, chosen.folds, chosen.grid) == ("cross-validation", 3, "two-stage")
    drawn = np.random.default_rng(0).choice(np.arange(3013), 300, replace=False)
    rare = {3000, 3001, 3002}  # Every row of the rare class, so each of the 3 folds holds one.
    assert chosen.rows.tolist() == sorted(set(drawn.tolist()) | rare)
    assert chosen.why == (f"3-fold cross-validated macro-F1 on {len(chosen.rows):,} rows drawn at random of 3,013, "
                          "two-stage grid")


def test_a_thousand_classes_of_two_rows_without_validation_rows_leave_no_search_when_every_row_costs_too_much():
    targets, train_count = rows_of([2] * 1000, [0] * 1000)
    # Drawn rows must still hold 2 rows of every class: all 2,000 rows, whatever the draw's budget.
    chosen = plan(targets, train_count, cost_per_row=200_000.0, seed=0)
    assert (chosen.method, chosen.rows.tolist()) == ("fixed", [])
    assert chosen.why == (f"cross-validation on the 2,000 rows that hold 2 of every class would cost "
                          f"{7 * 1 * 2000 * 200_000:,.0f}, above {CV_MAX_COST:,}")
    # Where rows are cheap, every row is cross-validated.
    cheap = plan(targets, train_count, cost_per_row=100.0, seed=0)
    assert (cheap.method, cheap.folds, len(cheap.rows)) == ("cross-validation", 2, 2000)


def test_a_class_with_validation_rows_alone_gets_no_holdout_that_would_fit_without_it():
    # Its one row is a validation row (textclf can drop a training row that repeats another's text): a holdout's
    # fits would lack the class, and no fold can hold it in both parts.
    targets, train_count = rows_of([400, 0], [100, 1])
    chosen = plan(targets, train_count, cost_per_row=10.0, seed=0)
    assert (chosen.method, chosen.rows.tolist()) == ("fixed", [])
    assert chosen.why == "a class has one row, too few to score choices on"


def test_a_class_with_one_row_and_no_validation_row_leaves_no_search():
    targets, train_count = rows_of([50, 1], [10, 0])
    chosen = plan(targets, train_count, cost_per_row=10.0, seed=0)
    assert (chosen.method, chosen.rows.tolist()) == ("fixed", [])
    assert chosen.why == "a class has one row, too few to score choices on"


def test_fits_run_side_by_side_on_the_cores_while_memory_allows(monkeypatch):
    import os

    from textclf.training.fit_threads import parallel_fits

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert parallel_fits(fits=5, parameters=1000) == 4  # The cores.
    assert parallel_fits(fits=2, parameters=1000) == 2  # The fits.
    # 12 float64 arrays of 3.5 million weights are 336 MB a fit: 3 fit in 1 GiB.
    assert parallel_fits(fits=5, parameters=3_500_000) == 3
    assert parallel_fits(fits=5, parameters=10**9) == 1  # Even one fit above the bound still runs.


def test_overlapping_fits_keep_one_blas_thread_until_the_last_ends():
    from threadpoolctl import threadpool_info, threadpool_limits

    from textclf.training.fit_threads import one_blas_thread

    def threads():
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    import numpy  # noqa: F401  (OpenBLAS loaded)

    with threadpool_limits(2, user_api="blas"):
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # An earlier run's fits end while a later run's go on.
        assert threads() == {1}
        second.__exit__(None, None, None)
        assert threads() == {2}
