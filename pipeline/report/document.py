"""A report as a list of blocks, rendered to Markdown (images as PNG files beside it) and to
self-contained HTML (images inlined as base64 PNG)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    title: str
    png: bytes
    filename: str


@dataclass(frozen=True)
class Notes:
    items: list[str]


Block = Heading | Text | Table | Image | Notes


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> None:
        self.blocks.append(block)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, image_dir: str) -> str:
    """Markdown; images are linked as ``<image_dir>/<filename>``."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * b.level} {b.text}", ""]
        elif isinstance(b, Text):
            out += [b.text, ""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            out.append("|" + "|".join("---" for _ in b.headers) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.title}]({image_dir}/{b.filename})", ""]
        elif isinstance(b, Notes):
            out += [f"> {item}" for item in b.items] + [""]
    return "\n".join(out)


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.note{color:#8a5300;background:#fff6e5;padding:2px 8px;margin:2px 0}"""


def to_html(doc: Document) -> str:
    """One HTML file with every image embedded as a data URI."""
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           f"<title>{esc(doc.title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{esc(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            out.append(f"<p>{esc(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in b.headers)
            body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f"<figure><img alt='{esc(b.title)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{esc(b.title)}</figcaption></figure>")
        elif isinstance(b, Notes):
            out += [f"<div class='note'>{esc(item)}</div>" for item in b.items]
    out.append("</body></html>")
    return "\n".join(out)


def write(doc: Document, out_dir: Path, name: str) -> tuple[Path, Path]:
    """``<out_dir>/<name>.md`` (+ ``<name>_files/*.png``) and ``<out_dir>/<name>.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = out_dir / f"{name}_files"
    images = [b for b in doc.blocks if isinstance(b, Image)]
    if images:
        image_dir.mkdir(exist_ok=True)
    for image in images:
        (image_dir / image.filename).write_bytes(image.png)
    md_path, html_path = out_dir / f"{name}.md", out_dir / f"{name}.html"
    md_path.write_text(to_markdown(doc, image_dir.name))
    html_path.write_text(to_html(doc))
    return md_path, html_path
