"""What a usage report says and how it looks: the usage of a scope over a period (``ReportData``, read
by ``report_data`` from telemetry's ``usage_summary``), rendered as CSV, as an HTML page whose charts are
inline SVG drawn here (so a mail reader shows them without scripts), and as a PDF (fpdf2, pure Python).
No I/O beyond the reads of ``report_data``; the services store and mail what these functions return."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from django.template.loader import render_to_string
from fpdf import FPDF

from apps.identity.policy import Actor
from apps.telemetry.usage import MEASURES, Consumer, Usage, usage_summary

MEASURE_LABELS = {"instance_hours": ("Instance hours", "h"), "vcpu_hours": ("vCPU hours", "h"),
                  "memory_mb_hours": ("RAM MB-hours", "MB-h"), "disk_gb_hours": ("Disk GB-hours", "GB-h"),
                  "volume_gb_hours": ("Volume GB-hours", "GB-h"), "snapshot_gb_hours": ("Snapshot GB-hours", "GB-h"),
                  "object_gb_hours": ("Object storage GB-hours", "GB-h"),
                  "floating_ip_hours": ("Floating IP hours", "h"), "router_hours": ("Router hours", "h")}


@dataclass
class ProjectRow:
    project_id: str
    name: str
    usage: Usage

    def value(self, measure: str) -> float:
        return float(getattr(self.usage, measure))


@dataclass
class ReportData:
    title: str
    scope: str
    start: datetime
    end: datetime
    generated_at: datetime
    total: Usage
    projects: list[ProjectRow]
    top_resources: dict[str, list[Consumer]] = field(default_factory=dict)

    @property
    def instance_hours(self) -> float:
        return float(self.total.instance_hours)

    @property
    def by_flavor(self) -> dict[str, float]:
        return dict(sorted(self.total.instance_hours_by_flavor.items(), key=lambda item: (-item[1], item[0])))

    @property
    def measures(self) -> list[tuple[str, str, str, float]]:
        """(measure, label, unit, the scope's total) for every measure of the summary."""
        return [(m, MEASURE_LABELS[m][0], MEASURE_LABELS[m][1], float(getattr(self.total, m))) for m in MEASURES]

    @property
    def top(self) -> list[tuple[str, list[Consumer]]]:
        """The top resources of each measure that has any, labelled."""
        return [(MEASURE_LABELS[m][0], items) for m, items in self.top_resources.items() if items]


def report_data(*, actor: Actor, title: str, project_id: str | None, start: datetime, end: datetime,
                now: datetime, project_names: dict[str, str]) -> ReportData:
    """Usage over [start, end) of one project (``project_id``) or of every project (None; ``actor`` an
    admin), from telemetry's usage summary (``usage_summary``: instance hours as os-simple-tenant-usage
    counts them, i.e. what `openstack usage show` prints, by flavor; vCPU, RAM and disk hours; volume,
    snapshot and object GB-hours; floating IP and router hours; the top consumers)."""
    summary = usage_summary(caller=actor, start=start, end=end, project_id=project_id, now=now)
    usages = {str(u.project_id): u for u in summary.projects}
    if project_id and project_id not in usages:
        usages[project_id] = Usage(project_id=project_id)
    projects = [ProjectRow(project_id=pid, name=project_names.get(pid, ""), usage=u) for pid, u in usages.items()]
    projects.sort(key=lambda p: (-p.value("instance_hours"), p.project_id))
    scope = f"project {project_names.get(project_id) or project_id}" if project_id else "every project"
    return ReportData(title=title, scope=scope, start=start, end=end, generated_at=now, total=summary.total,
                      projects=projects, top_resources=summary.top_resources)


# ---- CSV ---------------------------------------------------------------------------------------------

CSV_HEADER = ["project_id", "project_name", "flavor", *MEASURES, "period_start", "period_end"]
ALL_FLAVORS = "(all)"


def render_csv(data: ReportData) -> bytes:
    """Per project: one row per flavor (its instance hours), then the project's row (flavor "(all)") with
    every measure; its instance, vCPU, RAM and disk hours are what `openstack usage show` prints."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    period = [data.start.isoformat(), data.end.isoformat()]
    blank = [""] * (len(MEASURES) - 1)
    for p in data.projects:
        for flavor, hours in sorted(p.usage.instance_hours_by_flavor.items()):
            writer.writerow([p.project_id, p.name, flavor, f"{hours:.6f}", *blank, *period])
        writer.writerow([p.project_id, p.name, ALL_FLAVORS, *(f"{p.value(m):.6f}" for m in MEASURES), *period])
    return out.getvalue().encode()


# ---- charts (inline SVG) -----------------------------------------------------------------------------

PALETTE = ("#2f6fb0", "#e08a2c", "#3c9a5f", "#c2434b", "#7d5ba6", "#8c6d4f", "#d46fb0", "#6f7f8f")


def svg_bars(title: str, items: list[tuple[str, float]], *, unit: str = "h", width: int = 560) -> str:
    """A horizontal bar chart as an SVG element (no script, no external reference)."""
    bar, gap, label_w, top = 20, 8, 170, 28
    height = top + max(len(items), 1) * (bar + gap) + 10
    biggest = max((value for _, value in items), default=0.0) or 1.0
    span = width - label_w - 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="report-chart">',
             f'<text x="0" y="16" font-family="sans-serif" font-size="14" font-weight="bold">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="0" y="{top + 14}" font-family="sans-serif" font-size="12" fill="#666">'
                     'No usage in this period.</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * (bar + gap)
        w = max(value / biggest * span, 1.0 if value > 0 else 0.0)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-family="sans-serif" '
                     f'font-size="12">{escape(label[:26])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {value:.2f} {unit}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-family="sans-serif" '
                     f'font-size="12">{value:.2f} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(data: ReportData) -> list[str]:
    def per_project(measure: str) -> list[tuple[str, float]]:
        return [(p.name or p.project_id, p.value(measure)) for p in data.projects]

    result = [svg_bars("Instance hours by flavor", list(data.by_flavor.items()))]
    if len(data.projects) > 1:
        result.append(svg_bars("Instance hours by project", per_project("instance_hours")))
    result.append(svg_bars("vCPU hours by project", per_project("vcpu_hours")))
    result.append(svg_bars("Storage GB-hours", [(label, value) for m, label, _, value in data.measures
                                                if m in ("volume_gb_hours", "snapshot_gb_hours", "object_gb_hours")],
                           unit="GB-h"))
    return result


def render_html(data: ReportData) -> bytes:
    rows = [(p.name or p.project_id, [p.value(m) for m in MEASURES]) for p in data.projects]
    return render_to_string("telemetry/report.html", {"data": data, "charts": charts(data), "rows": rows}).encode()


# ---- PDF (fpdf2) -------------------------------------------------------------------------------------

def _latin(text: str) -> str:
    """The core PDF fonts are Latin-1: anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(data: ReportData) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin(data.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin(f"Usage of {data.scope}, {data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    with pdf.table(col_widths=(70, 40), text_align=("LEFT", "RIGHT"), first_row_as_headings=True,
                   width=110, align="LEFT") as table:
        table.row(("Measure", "Total"))
        for _, label, unit, value in data.measures:
            table.row((f"{label} ({unit})", f"{value:.2f}"))
    pdf.ln(3)
    _pdf_bars(pdf, "Instance hours by flavor", list(data.by_flavor.items()))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Usage by project", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    short = ("Instance h", "vCPU h", "RAM MB-h", "Disk GB-h", "Volume GB-h", "Snap. GB-h", "Object GB-h",
             "FIP h", "Router h")
    with pdf.table(col_widths=(45, *([24] * len(MEASURES))), first_row_as_headings=True,
                   text_align=("LEFT", *(["RIGHT"] * len(MEASURES)))) as table:
        table.row(("Project", *short))
        for p in data.projects:
            table.row((_latin(p.name or p.project_id), *(f"{p.value(m):.2f}" for m in MEASURES)))
    for label, items in data.top:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, _latin(f"Top consumers: {label}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)
        with pdf.table(col_widths=(80, 80, 30), first_row_as_headings=True, width=190, align="LEFT") as table:
            table.row(("Resource", "Project", "Value"))
            for c in items:
                table.row((_latin(c.name or c.resource_id or ""), _latin(c.project_id), f"{c.value:.2f}"))
    return bytes(pdf.output())


def _pdf_bars(pdf: FPDF, title: str, items: list[tuple[str, float]]) -> None:
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    if not items:
        pdf.cell(0, 6, "No usage in this period.", new_x="LMARGIN", new_y="NEXT")
        return
    biggest = max(value for _, value in items) or 1.0
    x0, span = 60.0, 100.0
    for i, (label, value) in enumerate(items[:15]):
        y = pdf.get_y()
        pdf.set_xy(10, y)
        pdf.cell(x0 - 12, 6, _latin(label[:30]), align="R")
        red, green, blue = (int(PALETTE[i % len(PALETTE)][k:k + 2], 16) for k in (1, 3, 5))
        pdf.set_fill_color(red, green, blue)
        pdf.rect(x0, y + 1, max(value / biggest * span, 0.5), 4, style="F")
        pdf.set_xy(x0 + span + 3, y)
        pdf.cell(30, 6, f"{value:.2f} h", new_x="LMARGIN", new_y="NEXT")
