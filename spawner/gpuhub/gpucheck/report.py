"""The GPU check's report: sections with a status and a sentence, as JSON and as Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASS, FAIL, SKIPPED, NOT_SUPPORTED, INCONCLUSIVE = (
    "pass",
    "fail",
    "skipped",
    "not supported",
    "inconclusive",
)
#: How each status reads in the Markdown table.
_MARK = {
    PASS: "✅ pass",
    FAIL: "❌ fail",
    SKIPPED: "⏭ skipped",
    NOT_SUPPORTED: "➖ not supported",
    INCONCLUSIVE: "❔ inconclusive",
}


@dataclass
class Section:
    """One part of the check: what it looked at, how it went, and what it saw."""

    name: str  # stable key: "inventory", "sampler", "mig", "gpm", "isolation", "torch_job"
    title: str
    status: str
    summary: str  # one or two sentences a person reads first
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Everything one run of the check found."""

    host: str
    started_at: str
    finished_at: str = ""
    system: dict[str, Any] = field(default_factory=dict)  # driver, NVML, CUDA, gpuhub versions
    sections: list[Section] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``fail`` if any section failed, else ``pass``."""
        return FAIL if any(s.status == FAIL for s in self.sections) else PASS

    def section(self, name: str) -> Section:
        """The section called ``name``."""
        return next(s for s in self.sections if s.name == name)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"status": self.status, **asdict(self)}

    def to_markdown(self) -> str:
        """A readable summary: a table of the sections, then each section's details."""
        system = self.system
        lines = [
            f"# gpuhub GPU check: {self.host}",
            "",
            f"**Result: {self.status}** — {self.started_at} to {self.finished_at}",
            "",
            f"gpuhub {system.get('gpuhub')}, NVIDIA driver {system.get('driver')}, "
            f"CUDA (driver) {system.get('cuda_driver')}, NVML {system.get('nvml')}, "
            f"nvidia-ml-py {system.get('nvidia_ml_py')}, Python {system.get('python')}",
            "",
            "| check | status | what it found |",
            "| --- | --- | --- |",
        ]
        for s in self.sections:
            lines.append(f"| {s.title} | {_MARK.get(s.status, s.status)} | {_cell(s.summary)} |")
        for s in self.sections:
            lines += ["", f"## {s.title}", "", f"{_MARK.get(s.status, s.status)}: {s.summary}"]
            if s.details:
                body = json.dumps(s.details, indent=2, default=str)
                lines += ["", "```json", body, "```"]
        return "\n".join(lines) + "\n"

    def write(self, base: Path) -> tuple[Path, Path]:
        """Write ``base.json`` and ``base.md``; their paths."""
        base.parent.mkdir(parents=True, exist_ok=True)
        json_path, md_path = base.with_name(base.name + ".json"), base.with_name(base.name + ".md")
        json_path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _cell(text: str) -> str:
    """Text fit for one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")
