"""A report section: a title, an introduction, and plots and tables, or the reason it is empty."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from plotly.graph_objects import Figure


class Html(str):
    """A piece of HTML that is already escaped (anything else is escaped when the page is made)."""


#: what a section holds: plotly figures and HTML pieces (tables, notes), in order
Part = Union["Figure", Html]


@dataclass
class Section:
    anchor: str  # the id of the section on the page (its link in the contents)
    title: str
    intro: str = ""  # plain text, escaped on the page
    parts: list[Part] = field(default_factory=list)
    empty: str | None = None  # why there is nothing to show, said on the page instead
    columns: int = 1  # plots side by side (the notes and tables still span the section)

    @classmethod
    def empty_because(cls, anchor: str, title: str, reason: str) -> "Section":
        return cls(anchor, title, empty=reason)


def note(text: str) -> Html:
    """A short paragraph of plain text."""
    return Html(f'<p class="note">{escape(text)}</p>')


def table(headers: list[str], rows: list[list[str]], *, table_id: str | None = None,
          raw: bool = False) -> Html:
    """An HTML table; cells are escaped unless ``raw`` (then they are :class:`Html` already)."""
    attr = f' id="{escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return Html(f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def fmt(value: object, digits: int = 4) -> str:
    """A number as a table shows it: integers whole, others to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        return f"{value:.{digits}g}"
    return str(value)
