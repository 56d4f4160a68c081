"""The documentation: the metric reference documents every metric the catalogue has, the
error and command-line pages cover every class and subcommand, and the site builds with
``mkdocs build --strict``, so a broken link, anchor or API reference fails the tests."""

import ast
import html
import inspect
import os
import re
import subprocess
import sys

import pytest

import pycgroup
from pycgroup import catalogue, errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "metrics.md")


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_every_metric_is_documented():
    with open(DOCS) as f:
        text = f.read()
    names = [*catalogue.TABLE, catalogue.WORKING_SET, *catalogue.PROCESS_AND_HOST]
    assert [n for n in names if f"| `{n}` |" not in text] == []
    assert [k for k in catalogue.V1_MEMORY_STAT_KEYS if f"`{k}`" not in text
            and not k.startswith(("workingset_", "inactive_", "active_", "unevictable", "pg"))] == []


def test_every_gpu_metric_is_documented():
    from pycgroup import gpu

    with open(DOCS) as f:
        text = f.read()
    assert [m for m in gpu.METRICS if f"| `gpuN.{m}` |" not in text] == []


def test_every_cgroup_metric_says_whether_it_can_be_unlimited_or_unavailable():
    # The last column of the cgroup metrics table: U (can be unlimited), A (can be
    # unavailable). A limit the kernel writes as "max", "-1" or LONG_MAX must say U.
    rows = {}
    for line in _read("docs", "metrics.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0] != "`memory.stat.<key>`":
            rows[cells[0].strip("`")] = cells[4]
    unlimited = {"memory.max", "memory.high", "memory.low", "memory.min", "memory.soft_limit",
                 "memory.swap.max", "memory.memsw.max", "cpu.max.quota_usec", "pids.max"}
    for name in [*catalogue.TABLE, catalogue.WORKING_SET]:
        flags = rows[name].split("(")[0].split()
        assert "A" in flags, name
        assert ("U" in flags) == (name in unlimited), name


def _builtin_base(cls) -> type:
    """Returns the first builtin exception among cls's bases (in MRO order)."""
    return next(c for c in cls.__mro__[1:] if c.__module__ == "builtins")


def test_every_error_class_is_documented_with_its_builtin_base():
    from pycgroup.gpu import GpuUnavailable

    text = _read("docs", "errors.md")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `pycgroup\.(?:gpu\.)?(\w+)` \| ([^|]+) \|", line)
        if m:
            rows[m[1]] = m[2]
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.Error)] + [GpuUnavailable]
    assert len(classes) >= 12
    for cls in classes:
        assert cls.__name__ in rows, f"docs/errors.md has no row for {cls.__name__}"
        assert f"`{_builtin_base(cls).__name__}`" in rows[cls.__name__], cls.__name__
        if cls is not GpuUnavailable:
            assert cls.__name__ in pycgroup.__all__


def test_every_subcommand_has_a_section_and_its_help():
    from pycgroup.cli import SUBCOMMANDS

    text = _read("docs", "cli.md")
    for module in SUBCOMMANDS:
        name = module.__name__.rsplit(".", 1)[1]
        assert f"\n## pycgroup {name}\n" in text, name
        assert f"<!-- pycgroup-help: {name} -->" in text, name


def _signature_items(text: str, name: str) -> list:
    """Returns the parameter texts of the first rendered signature ``name(...)`` in text,
    split at its top-level commas."""
    m = re.search(rf"(?<![\w.]){re.escape(name)}\(", text)
    assert m, f"no rendered signature of {name}"
    depth, start, items = 1, m.end(), []
    for i in range(m.end(), len(text)):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                items.append(text[start:i])
                break
        elif ch == "," and depth == 1:
            items.append(text[start:i])
            start = i + 1
    # Leave out the bare "*" and "/" that mark keyword-only and positional-only ones.
    return [item.strip() for item in items if item.strip() not in ("", "*", "/")]


def _assert_rendered(text: str, function, name: str) -> None:
    """Asserts the page shows name(...) with the function's parameters, in order, and
    their defaults."""
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    items = _signature_items(text, name)
    rendered = [re.split(r"[:=]", item, maxsplit=1)[0].strip().lstrip("*") for item in items]
    assert rendered == [p.name for p in params], (name, items)
    for p, item in zip(params, items):
        if p.default is not inspect.Parameter.empty:
            # The rendered default is the source's literal, quoted as written or as a
            # formatter (black, ruff) rewrote it: compare values, not spellings.
            rendered_default = item.rsplit("=", 1)[1].strip()
            try:
                value = ast.literal_eval(rendered_default)
            except (ValueError, SyntaxError):  # a name or an expression, not a literal
                value = rendered_default
            assert value == p.default or rendered_default == repr(p.default), (name, item)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python",
                        reason="mkdocstrings[python] is not installed: pip install '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         os.path.join(ROOT, "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    return out


def _page_text(site, page: str) -> str:
    with open(os.path.join(site, page, "index.html"), encoding="utf-8") as f:
        raw = f.read()
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", raw)))


def test_the_site_builds_strictly(site):
    for page in ("api", "errors", "metrics", "recording", "cli", "readme"):
        assert os.path.exists(os.path.join(site, page, "index.html")), page
    assert os.path.exists(os.path.join(site, "index.html"))


def test_the_api_page_renders_the_real_signatures(site):
    from pycgroup.export import prometheus

    text = _page_text(site, "api")
    _assert_rendered(text, pycgroup.Sampler.span, "span")
    _assert_rendered(text, pycgroup.CGroup.read, "read")
    _assert_rendered(text, pycgroup.Sampler.__init__, "Sampler")
    _assert_rendered(text, pycgroup.limits, "limits")
    _assert_rendered(text, pycgroup.record, "record")
    _assert_rendered(text, pycgroup.Samples.rate, "rate")
    _assert_rendered(text, prometheus.start_http_server, "start_http_server")
    # The docstrings come through, not only the names.
    assert pycgroup.Sampler.span.__doc__.split("\n")[0].strip() in text
    assert "Raises KeyError for unknown names" in text


def test_the_api_page_has_an_anchor_for_each_public_name(site):
    with open(os.path.join(site, "api", "index.html"), encoding="utf-8") as f:
        raw = f.read()
    missing = [name for name in pycgroup.__all__
               if name != "gpu" and f'id="pycgroup.{name}"' not in raw
               and f'id="pycgroup.{name}' not in raw]
    # Names documented at their defining module are fine too (pycgroup.values.UNLIMITED,
    # pycgroup.errors.*): look them up by their last component.
    missing = [n for n in missing if not re.search(rf'id="pycgroup\.[\w.]*\.{n}"', raw)]
    assert missing == []
    assert 'id="pycgroup.Sampler.span"' in raw
    assert 'id="pycgroup.CGroup.read"' in raw


def test_the_cli_page_holds_each_subcommands_help(site):
    from pycgroup.cli import SUBCOMMANDS

    text = _page_text(site, "cli")
    for module in SUBCOMMANDS:
        name = module.__name__.rsplit(".", 1)[1]
        assert f"$ pycgroup {name} --help usage: pycgroup {name}" in text, name
    assert "--add-local-rank" in text and "--cadvisor-names" in text
    assert "pycgroup-help" not in text


def test_the_readme_page_links_into_the_site(site):
    with open(os.path.join(site, "readme", "index.html"), encoding="utf-8") as f:
        raw = f.read()
    # README.md links docs/metrics.md; on the site that is the metrics page.
    assert re.search(r'href="\.\./metrics/(#gpu-metrics)?"', raw)
    assert 'href="docs/' not in raw


def test_the_readme_says_how_to_build_the_docs():
    readme = _read("README.md")
    assert 'pip install ".[docs]" && mkdocs serve' in readme
