"""Helpers for the knowledge tests: projects on disk and a hand-written PDF."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "laformula" / "knowledge"
PLUGIN = "nicobot.builtins.chroma_knowledge"


def write_project(
    directory: Path, knowledge_toml: str = "", name: str = "Nico", language: str = "en"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "knowledge").mkdir(exist_ok=True)
    (directory / "nicobot.toml").write_text(
        f'[bot]\nname = "{name}"\nlanguage = "{language}"\n\n[knowledge]\n{knowledge_toml}\n',
        encoding="utf-8",
    )
    return directory


def make_pdf(path: Path, lines: list[str]) -> Path:
    """A one-page PDF with ``lines`` of ASCII text (Helvetica), written by hand."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({escape(t)}) '" for t in lines)
    content += " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(bytes(out))
    return path
