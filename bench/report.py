"""Runs the benchmark suite and writes its results as Markdown into the README.

    python bench/report.py            # run everything, update README.md
    python bench/report.py --json F   # rebuild the table from an earlier run's JSON

Every figure in the table comes from the run; ratios compare minimums of many rounds
taken in the same run, the least noisy estimate on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
README = os.path.join(ROOT, "README.md")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def run_suite(out: str) -> None:
    subprocess.run([sys.executable, "-m", "pytest", HERE, "-q", "-p", "no:cacheprovider",
                    f"--benchmark-json={out}", "--benchmark-disable-gc"], check=True, cwd="/")


def machine(data: dict) -> str:
    info = data["machine_info"]
    cpu = info.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown CPU"
    import pycgroup

    cg = pycgroup.current()
    return (f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
            f"{info['python_version']}, cgroup {cg.mode}; {data['datetime'][:10]}")


def by_name(data: dict) -> dict:
    return {b["name"]: b for b in data["benchmarks"]}


def us(bench) -> str:
    return f"{bench['stats']['min'] * 1e6:,.1f} µs"


def ratio(a, b) -> float:
    return a["stats"]["min"] / b["stats"]["min"]


def holds(ok: bool) -> str:
    return "holds" if ok else "does not hold"


def sample_table(b: dict) -> list:
    floor = b["test_floor_pread_only"]
    native = b["test_native_sample"]
    rows = ["| one sample of the default set | min | × floor | native is N× faster |",
            "|---|---|---|---|"]
    for name, label in [("test_floor_pread_only", "floor: the same syscalls from C (preads, clocks), no parsing"),
                        ("test_native_sample", "pycgroup `Sampler.sample()` (native)"),
                        ("test_pure_twin_sample", "pure-Python twin (`backend=\"pure\"`)"),
                        ("test_tuned_python_reader", "tuned Python: kept-open fds + `os.pread` + split"),
                        ("test_naive_python_reader", "naive Python: open/read/split every file")]:
        x = b[name]
        rows.append(f"| {label} | {us(x)} | {ratio(x, floor):.2f} | "
                    f"{'' if name in ('test_floor_pread_only', 'test_native_sample') else f'{ratio(x, native):.1f}'} |")
    return rows


def sample_sets_table(b: dict) -> list:
    """sample() over its floor for every metric set the benchmarks use."""
    names = [n for n in b if n.startswith("test_sample_over_floor[")]
    if not names:
        return []
    rows = ["| `sample()` over its floor (same syscalls, no parsing), per metric set | metrics "
            "| × floor |", "|---|---|---|"]
    for name in names:
        e = b[name]["extra_info"]
        rows.append(f"| {name[len('test_sample_over_floor['):-1]} | {e['metrics']} | "
                    f"{e['ratio']:.2f} |")
    return rows


def process_table(b: dict) -> list:
    rows = ["| process CPU times, RSS and host memory | min | × pycgroup |", "|---|---|---|"]
    base = b.get("test_pycgroup_process_and_host")
    for name, label in [("test_pycgroup_process_and_host", "pycgroup `sample()` of the 5 metrics"),
                        ("test_pycgroup_read_dict", "pycgroup `cg.read(names)` (a dict)"),
                        ("test_psutil", "psutil `cpu_times()` + `memory_info()` + `virtual_memory()`")]:
        if name in b and base:
            rows.append(f"| {label} | {us(b[name])} | {ratio(b[name], base):.2f} |")
    return rows


def sampler_table(b: dict) -> list:
    rows = ["| background sampler | 100 Hz | 1 kHz | 10 kHz |", "|---|---|---|---|"]
    for work in ("python-loop", "numpy-loop"):
        cells = []
        for hz in (100, 1000, 10000):
            x = b[f"test_slowdown_of_a_cpu_bound_loop[{work}-{hz}]"]["extra_info"]
            cells.append(f"{(x['slowdown_median'] - 1) * 100:+.1f}% "
                         f"({(x['slowdown_q1'] - 1) * 100:+.1f}…{(x['slowdown_q3'] - 1) * 100:+.1f})")
        rows.append(f"| slowdown of a CPU-bound {work.replace('-', ' ')}, median (quartiles) "
                    f"| {' | '.join(cells)} |")
    for backend in ("native", "pure"):
        cells = ["–"]
        for hz in (1000, 10000):
            x = b[f"test_sampler_cpu_per_second[{hz}-{backend}]"]["extra_info"]
            cells.append(f"{x['cpu_s_per_s'] * 1000:.0f} ms/s")
        rows.append(f"| CPU time of the {backend} sampler per second | {' | '.join(cells)} |")
    return rows


def schedule_table(b: dict) -> list:
    rows = ["| schedule over 2 s | rows | overruns | late p50 | late p99 | late max |",
            "|---|---|---|---|---|---|"]
    for hz in (1000, 10000):
        for metrics in ("default", "no files"):
            x = b[f"test_schedule[{hz}-{metrics}]"]["extra_info"]
            label = f"{hz // 1000} kHz, " + ("default set" if metrics == "default"
                                            else "no files (the machine's floor)")
            rows.append(f"| {label} | {x['samples']} | {x['overruns']} | {x['p50_us']:.0f} µs | "
                        f"{x['p99_us']:.0f} µs | {x['max_us']:.0f} µs |")
    return rows


def scaling_table(b: dict) -> list:
    rows = ["| scaling | min | per unit |", "|---|---|---|"]
    for count in ("1", "5", "10", "all"):
        x = b.get(f"test_metric_count[{count}]")
        if x:
            n = x["extra_info"]["metrics"]
            rows.append(f"| `sample()` of {n} metrics | {us(x)} | {x['stats']['min'] * 1e6 / n:.2f} µs/metric |")
    for layout in ("v1", "v2"):
        x = b.get(f"test_memory_stat_parse[{layout}]")
        if x:
            e = x["extra_info"]
            rows.append(f"| parse a {layout} memory.stat ({e['keys']} keys, {e['bytes']} B) | {us(x)} | "
                        f"{x['stats']['min'] * 1e9 / e['bytes']:.2f} ns/byte |")
    for n in (1, 8, 64):
        x = b.get(f"test_sibling_cgroups[{n}]")
        if x:
            rows.append(f"| one row from each of {n} sibling cgroups (6 metrics each) | {us(x)} | "
                        f"{x['stats']['min'] * 1e6 / n:.1f} µs/cgroup |")
    return rows


def steps_table(b: dict) -> list:
    """Per-step attribution: marks, spans, steps() and the sampler thread's own cost."""
    if "test_mark" not in b:
        return []
    mark, span = b["test_mark"], b["test_span_enter_exit"]["extra_info"]
    exact, steps = b["test_span_exact"], b["test_steps_of_10000_spans"]
    memory = b["test_memory_per_finished_span"]["extra_info"]
    loop = b["test_training_loop[span]"]["extra_info"]
    rows = ["| per-step attribution (default set, thread at 1 kHz) | median | p99 or ratio |",
            "|---|---|---|",
            f"| `s.mark(label)` | {mark['stats']['median'] * 1e6:.2f} µs | |",
            f"| `with s.span(label):` enter + exit | {span['median_us']:.1f} µs | "
            f"p99 {span['p99_us']:.0f} µs |",
            f"| `with s.span(label, exact=True):` (two `sample()`s) | "
            f"{exact['stats']['median'] * 1e6:.0f} µs | |",
            f"| `s.steps(label)` over 10,000 spans | {steps['stats']['median'] * 1e3:.0f} ms | "
            f"{steps['stats']['median'] * 1e6 / 10_000:.1f} µs/span |",
            f"| memory per finished span ({memory['columns']} columns) | "
            f"{memory['bytes_per_span']:.0f} B | |",
            f"| training loop of {loop['step_ms']:.1f} ms numpy steps, 1 kHz sampler + a span "
            f"per step ({loop['pairs']} pairs) | {(loop['slowdown_median'] - 1) * 100:+.2f}% | "
            f"95% interval {(loop['slowdown_ci_low'] - 1) * 100:+.2f}…"
            f"{(loop['slowdown_ci_high'] - 1) * 100:+.2f}% |"]
    null = b.get("test_training_loop[nullcontext]")
    if null:
        e = null["extra_info"]
        rows.append(f"| the same with `contextlib.nullcontext()` in place of the span: what any "
                    f"`with` costs there | {(e['slowdown_median'] - 1) * 100:+.2f}% | 95% interval "
                    f"{(e['slowdown_ci_low'] - 1) * 100:+.2f}…{(e['slowdown_ci_high'] - 1) * 100:+.2f}% |")
    for case, what in (("1000", "1 kHz"), ("10000", "10 kHz"),
                       ("1000-span-open", "1 kHz with a span open")):
        x = b.get(f"test_thread_cpu_vs_bare_thread[{case}]")
        if x:
            e = x["extra_info"]
            rows.append(f"| sampler thread CPU at {what} vs a bare C thread that "
                        f"preads one file (medians; ratio: median of paired seconds) | "
                        f"{e['sampler_cpu_s_per_s'] * 1e3:.1f} vs "
                        f"{e['bare_cpu_s_per_s'] * 1e3:.1f} ms/s | {e['ratio']:.2f}× |")
    return rows


EMPTY = "&nbsp;&nbsp;an empty callback with the same per-step hooks: the framework's own share"
CALLBACKS = [("test_meter_overhead_per_step", "the step meter every callback runs, 1 ms numpy steps"),
             ("test_lightning_callback_overhead[pycgroup]", "Lightning `PycgroupCallback`, a small MLP"),
             ("test_lightning_callback_overhead[empty]", EMPTY),
             ("test_transformers_callback_overhead[pycgroup]", "transformers `PycgroupCallback`, a 2-layer BERT"),
             ("test_transformers_callback_overhead[empty]", EMPTY),
             ("test_keras_callback_overhead[pycgroup]", "Keras `PycgroupCallback` (torch backend), a small MLP"),
             ("test_keras_callback_overhead[empty]", EMPTY)]


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def callbacks_table(b: dict) -> list:
    """What each framework callback costs a training loop (interleaved blocks)."""
    rows = ["| framework callback, logging every 50 steps | wall time, median (95% interval) "
            "| process CPU time, median (95% interval) | pairs |", "|---|---|---|---|"]
    for name, label in CALLBACKS:
        if name in b:
            e = b[name]["extra_info"]
            rows.append(f"| {label} | {_percent(e['slowdown_median'])} "
                        f"({_percent(e['slowdown_ci_low'])}…{_percent(e['slowdown_ci_high'])}) | "
                        f"{_percent(e['cpu_ratio_median'])} ({_percent(e['cpu_ratio_ci_low'])}…"
                        f"{_percent(e['cpu_ratio_ci_high'])}) | {e['pairs']} |")
    for name, label in [("test_meter_step_hooks", "a step's hooks (a span)"),
                        ("test_meter_collect_after_50_steps", "a logging step's report over 50 steps")]:
        if name in b:
            rows.append(f"| {label} | {b[name]['stats']['median'] * 1e6:.1f} µs | | |")
    return rows if len(rows) > 2 else []


def gpu_table(b: dict) -> list:
    names = [n for n in b if n.startswith("test_gpu_")]
    if not names:
        return []
    base = b.get("test_gpu_bare_nvml_calls")
    rows = ["| one GPU sample group (fake NVML) | min | × bare NVML calls |", "|---|---|---|"]
    for name in sorted(names):
        rows.append(f"| {b[name]['extra_info'].get('label', name)} | {us(b[name])} | "
                    f"{ratio(b[name], base):.2f} |" if base else f"| {name} | {us(b[name])} | |")
    return rows


def bars(b: dict) -> list:
    paired = b["test_paired_ratios"]["extra_info"]
    one_k = b["test_slowdown_of_a_cpu_bound_loop[python-loop-1000]"]["extra_info"]
    ten_k = b["test_schedule[10000-default]"]["extra_info"]
    p99 = b["test_schedule[1000-default]"]["extra_info"]["p99_us"]
    lines = [
        f"- `sample()` ≤ 1.2× the floor: {paired['native_over_floor']:.2f}×, "
        f"{holds(paired['native_over_floor'] <= 1.2)}.",
        f"- ≥ 10× faster than the naive reader: {paired['naive_over_native']:.1f}×, "
        f"{holds(paired['naive_over_native'] >= 10)}.",
        f"- ≥ 3× faster than the tuned reader: {paired['tuned_over_native']:.1f}×, "
        f"{holds(paired['tuned_over_native'] >= 3)}.",
        f"- (native vs the pure twin: {paired['pure_over_native']:.1f}× faster.)",
        f"- < 1% slowdown of a CPU-bound loop at 1 kHz: median {(one_k['slowdown_median'] - 1) * 100:+.1f}%, "
        f"{holds(one_k['slowdown_median'] < 1.01)} (the quartiles show how much of that is noise).",
        f"- 10 kHz without overruns: {ten_k['overruns']} overruns in {ten_k['samples']} rows, "
        f"{holds(ten_k['overruns'] == 0)}.",
        f"- p99 lateness at 1 kHz under 100 µs: {p99:.0f} µs, {holds(p99 < 100)}.",
    ]
    sets = [b[n]["extra_info"]["ratio"] for n in b if n.startswith("test_sample_over_floor[")]
    if sets:
        lines.append(f"- `sample()` ≤ 1.2× the floor on every metric set: at most "
                     f"{max(sets):.2f}×, {holds(max(sets) <= 1.2)}.")
    if "test_mark" in b:
        mark = b["test_mark"]["stats"]["median"] * 1e6
        span = b["test_span_enter_exit"]["extra_info"]
        loop_info = b["test_training_loop[span]"]["extra_info"]
        loop = loop_info["slowdown_median"]
        lines += [
            f"- `mark()` ≤ 1 µs median: {mark:.2f} µs, {holds(mark <= 1)}.",
            f"- span enter + exit ≤ 5 µs median and ≤ 50 µs p99: {span['median_us']:.1f} µs "
            f"and {span['p99_us']:.0f} µs, "
            f"{holds(span['median_us'] <= 5 and span['p99_us'] <= 50)}.",
            f"- ≤ 1% slowdown of a training loop with a span per step: "
            f"{(loop - 1) * 100:+.2f}% (95% interval {_percent(loop_info['slowdown_ci_low'])}…"
            f"{_percent(loop_info['slowdown_ci_high'])}), {holds(loop <= 1.01)}.",
        ]
        thread = b.get("test_thread_cpu_vs_bare_thread[1000]")
        if thread:
            r = thread["extra_info"]["ratio"]
            lines.append(f"- sampler thread ≤ 1.5× a bare thread's CPU at 1 kHz: {r:.2f}×, "
                         f"{holds(r <= 1.5)}.")
        spanned = b.get("test_thread_cpu_vs_bare_thread[1000-span-open]")
        if spanned:
            r = spanned["extra_info"]["ratio"]
            lines.append(f"- the same with a span open (the process CPU clock read on every "
                         f"tick instead of at each span boundary): {r:.2f}×, "
                         f"{holds(r <= 1.5)}.")
    for name, label in CALLBACKS[1:]:
        if name in b and name.endswith("[pycgroup]"):
            e = b[name]["extra_info"]
            worst = max(e["slowdown_median"], e["cpu_ratio_median"])
            empty = b.get(name.replace("[pycgroup]", "[empty]"))
            floor = (f" (an empty callback with the same hooks: "
                     f"{_percent(empty['extra_info']['slowdown_median'])} wall)" if empty else "")
            lines.append(f"- {label.split(',')[0]} ≤ 1% of the training loop: "
                         f"{_percent(e['slowdown_median'])} wall (95% interval "
                         f"{_percent(e['slowdown_ci_low'])}…{_percent(e['slowdown_ci_high'])}), "
                         f"{_percent(e['cpu_ratio_median'])} CPU, {holds(worst <= 1.01)}{floor}.")
    if "test_gpu_bare_nvml_calls" in b:
        bare, gpu = b["test_gpu_bare_nvml_calls"], b["test_gpu_native_group"]
        pynvml = b.get("test_gpu_nvidia_ml_py")
        lines.append(f"- GPU group ≤ 1.2× the bare NVML calls: {ratio(gpu, bare):.2f}×, "
                     f"{holds(ratio(gpu, bare) <= 1.2)}.")
        if pynvml:
            lines.append(f"- GPU group ≥ 3× faster than nvidia-ml-py: {ratio(pynvml, gpu):.1f}×, "
                         f"{holds(ratio(pynvml, gpu) >= 3)}.")
    return lines


def render(data: dict) -> str:
    b = by_name(data)
    parts = [f"Measured on {machine(data)}. Times are the minimum over many rounds; "
             "ratios compare minimums from the same run.", ""]
    for table in (sample_table(b), sample_sets_table(b), process_table(b), gpu_table(b), sampler_table(b),
                  steps_table(b), callbacks_table(b), schedule_table(b), scaling_table(b)):
        if table:
            parts += table + [""]
    parts += ["Bars (ratios here are medians of interleaved back-to-back blocks, which cancel "
              "the machine's drifts better than minimums of separate runs):", *bars(b)]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="use this pytest-benchmark JSON instead of running")
    parser.add_argument("--no-readme", action="store_true", help="print, do not edit README")
    args = parser.parse_args(argv)
    out = args.json or os.path.join(HERE, "results", "latest.json")
    if not args.json:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        run_suite(out)
    with open(out) as f:
        table = render(json.load(f))
    if args.no_readme:
        print(table)
        return 0
    with open(README) as f:
        text = f.read()
    block = f"{START}\n{table}\n{END}"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    with open(README, "w") as f:
        f.write(text)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
