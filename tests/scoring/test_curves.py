"""Training curves: parsing ESPnet's per-epoch summary lines and drawing the PNG."""

import pytest

from espnet_ser.scoring.curves import parse_epoch_line, parse_train_log, plot_curves, series


def reporter_line(epoch, train, valid):
    """A summary line made by ESPnet's own Reporter.log_message."""
    from espnet2.train.reporter import Reporter

    r = Reporter()
    for e in range(1, epoch + 1):
        r.set_epoch(e)
        for key, stats in (("train", train), ("valid", valid)):
            with r.observe(key) as sub:
                sub.register(stats)
                sub.next()
    return r.log_message(epoch)


def test_parse_line_made_by_espnet_reporter():
    line = reporter_line(2, dict(loss=1.2345, acc=0.5), dict(loss=1.5, acc=0.625, ua=0.6))
    assert line.startswith("2epoch results: [train] ")
    epoch, sections = parse_epoch_line(f"[host] 2026-01-01 00:00:00 (trainer:394) INFO: {line}")
    assert epoch == 2
    assert sections["train"]["loss"] == pytest.approx(1.234, abs=1e-3)
    assert sections["train"]["acc"] == pytest.approx(0.5)
    assert sections["valid"] == {**sections["valid"], "loss": 1.5, "acc": 0.625, "ua": 0.6}


LOG = """\
[host] 2026-01-01 10:00:00,000 (trainer:336) INFO: 1/3epoch started
[host] 2026-01-01 10:00:05,000 (trainer:811) INFO: 1epoch:train:1-10batch: iter_time=1.0e-03, loss=9.000
[host] 2026-01-01 10:01:00,000 (trainer:394) INFO: 1epoch results: [train] iter_time=1.234e-03, \
forward_time=0.012, loss=1.400, loss_ce=1.400, acc=0.300, train_time=1 hour, 2 minutes and 3.5 \
seconds, optim0_lr0=1.000e-03, [valid] loss=1.300, acc=0.400, ua=0.350, [attn_plot] time=2.1e-04, total_count=10
[host] 2026-01-01 10:02:00,000 (trainer:394) INFO: 2epoch results: [train] loss=1.100, acc=0.450, \
[valid] loss=1.200, acc=0.500, ua=0.475
[host] 2026-01-01 10:03:00,000 (trainer:394) INFO: 3epoch results: [train] loss=0.900, acc=0.600, \
[valid] loss=1.250, acc=0.480, ua=0.490
[host] 2026-01-01 11:00:00,000 (trainer:177) INFO: The training was resumed using exp/checkpoint.pth
[host] 2026-01-01 11:01:00,000 (trainer:394) INFO: 3epoch results: [train] loss=0.800, acc=0.650, \
[valid] loss=1.150, acc=0.520, ua=0.510
"""


def test_parse_log_and_plot(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    stats = parse_train_log(log)
    assert list(stats) == [1, 2, 3]
    assert stats[1]["train"] == {"iter_time": 1.234e-3, "forward_time": 0.012, "loss": 1.4,
                                 "loss_ce": 1.4, "acc": 0.3, "optim0_lr0": 1e-3}
    assert stats[1]["valid"] == {"loss": 1.3, "acc": 0.4, "ua": 0.35}
    assert stats[1]["attn_plot"] == {"time": 2.1e-4, "total_count": 10.0}
    assert stats[3]["valid"]["acc"] == 0.52  # the resumed run's line replaces the first
    assert series(stats, "valid", "ua") == ([1, 2, 3], [0.35, 0.475, 0.51])
    assert series(stats, "train", "loss") == ([1, 2, 3], [1.4, 1.1, 0.8])
    png = tmp_path / "out" / "curves.png"
    plot_curves(stats, png, title="train.log")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with pytest.raises(ValueError, match="no epoch"):
        plot_curves({}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_timedelta_values_are_skipped():
    # ESPnet prints durations with humanfriendly, commas included
    _, sections = parse_epoch_line(
        "5epoch results: [train] loss=0.5, train_time=1 hour, 2 minutes and 3 seconds, acc=0.7")
    assert sections == {"train": {"loss": 0.5, "acc": 0.7}}
    assert parse_epoch_line("5epoch:train:1-10batch: loss=0.5") is None


def ctc_log(tmp_path, with_ctc):
    """A train.log of two epochs; with_ctc: the valid sections carry cer_ctc / wer_ctc."""
    lines = []
    for epoch, (wer, cer) in enumerate(((0.9, 0.6), (0.5, 0.25)), 1):
        valid = dict(loss=1.0 / epoch, acc=0.4 * epoch, ua=0.3 * epoch)
        if with_ctc:
            valid.update(cer_ctc=cer, wer_ctc=wer)
        line = reporter_line(epoch, dict(loss=1.2 / epoch, acc=0.3 * epoch), valid)
        lines.append(f"[host] 2026-01-01 10:00:00,000 (trainer:394) INFO: {line}")
    log = tmp_path / f"train_{with_ctc}.log"
    log.write_text("\n".join(lines) + "\n")
    return parse_train_log(log)


def test_ctc_error_panel_when_the_log_has_it(tmp_path):
    import matplotlib.image

    stats = ctc_log(tmp_path, with_ctc=True)
    png = tmp_path / "ctc" / "curves.png"
    fig = plot_curves(stats, png)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "CTC error rate"]
    ax = fig.axes[2]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"valid WER (CTC)", "valid CER (CTC)"}
    assert list(lines["valid WER (CTC)"].get_xdata()) == [1, 2]
    assert list(lines["valid WER (CTC)"].get_ydata()) == pytest.approx([0.9, 0.5])
    assert list(lines["valid CER (CTC)"].get_ydata()) == pytest.approx([0.6, 0.25])
    assert ax.get_xlabel() == "epoch"
    # the accuracy panel beside it still has accuracy and UA
    assert {line.get_label() for line in fig.axes[1].get_lines()} >= {"valid acc (WA)", "valid UA"}
    assert matplotlib.image.imread(png).shape[:2] == (400, 1500)  # three panels


def test_no_ctc_error_panel_without_it(tmp_path):
    import matplotlib.image

    png = tmp_path / "plain" / "curves.png"
    fig = plot_curves(ctc_log(tmp_path, with_ctc=False), png)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert matplotlib.image.imread(png).shape[:2] == (400, 1000)
