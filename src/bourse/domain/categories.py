"""Market categories: the back office's tree that groups markets for the trading UI.

The tree is replaced whole (``PUT /markets-categories``), so it is parsed and
checked here as one value: shapes, limits and unique ids. Whether each market id
names a market is the service's check (it needs the store); a tree is only
stored once every reference in it resolves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bourse.domain.errors import InvalidInput

MAX_DEPTH = 5  # root categories are depth 1
MAX_CATEGORIES = 500  # in the whole tree
MAX_MARKETS_PER_CATEGORY = 1000
MAX_NAME_LENGTH = 128
CATEGORY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELDS = frozenset({"id", "name", "categories", "markets"})


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    categories: tuple[Category, ...] = ()
    markets: tuple[str, ...] = ()  # market ids, in the order the back office gave them


@dataclass(frozen=True, slots=True)
class MarketRef:
    """A market as a category shows it."""

    id: str
    display_name: str
    full_name: str
    is_hidden: bool


@dataclass(frozen=True, slots=True)
class CategoryTree:
    """The stored tree and every market it names (hidden ones included)."""

    categories: list[Category]
    markets: dict[str, MarketRef]


@dataclass(frozen=True, slots=True)
class CategoryRow:
    """One stored category: its parent (None for a root) and its place among its siblings."""

    id: str
    parent_id: str | None
    name: str
    position: int
    markets: tuple[str, ...]


def walk(categories: Sequence[Category], path: str = "categories") -> Iterator[tuple[Category, str]]:
    """Every category of the tree, parents first, with its field path (``categories.0.categories.2``)."""
    for i, category in enumerate(categories):
        where = f"{path}.{i}"
        yield category, where
        yield from walk(category.categories, f"{where}.categories")


def flatten(categories: Sequence[Category], parent_id: str | None = None) -> list[CategoryRow]:
    """The tree as rows, parents before children (so each row's parent is already stored)."""
    rows: list[CategoryRow] = []
    for position, category in enumerate(categories):
        rows.append(CategoryRow(category.id, parent_id, category.name, position, category.markets))
        rows.extend(flatten(category.categories, category.id))
    return rows


def build_tree(rows: Sequence[CategoryRow]) -> list[Category]:
    """The stored rows back as a tree, siblings by position."""
    children: dict[str | None, list[CategoryRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)

    def under(parent_id: str | None) -> tuple[Category, ...]:
        return tuple(
            Category(row.id, row.name, under(row.id), row.markets)
            for row in sorted(children.get(parent_id, ()), key=lambda r: (r.position, r.id))
        )

    return list(under(None))


def parse_tree(body: object) -> list[Category]:
    """``{"categories": [...]}`` from a PUT body. A category without an id gets a new one."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = set(body) - {"categories"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {name}", field=name)
    if "categories" not in body:
        raise InvalidInput("categories is required", field="categories")
    counter = [0]
    tree = _categories(body["categories"], "categories", 1, counter)
    seen: dict[str, str] = {}
    for category, where in walk(tree):
        if category.id in seen:
            raise InvalidInput(
                f"category id {category.id} is used twice ({seen[category.id]} and {where})",
                field=f"{where}.id",
            )
        seen[category.id] = where
    return tree


def _categories(value: object, path: str, depth: int, counter: list[int]) -> list[Category]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{path} must be a JSON array", field=path)
    if value and depth > MAX_DEPTH:
        raise InvalidInput(f"categories nest at most {MAX_DEPTH} levels deep", field=path)
    return [_category(item, f"{path}.{i}", depth, counter) for i, item in enumerate(value)]


def _category(value: object, path: str, depth: int, counter: list[int]) -> Category:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{path} must be a JSON object", field=path)
    unknown = set(value) - _FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {path}.{name}", field=f"{path}.{name}")
    counter[0] += 1
    if counter[0] > MAX_CATEGORIES:
        raise InvalidInput(f"the tree holds at most {MAX_CATEGORIES} categories", field=path)
    raw_id = value.get("id")
    if raw_id is None:
        category_id = uuid.uuid4().hex
    elif not isinstance(raw_id, str) or not CATEGORY_ID_RE.match(raw_id):
        raise InvalidInput("a category id is 1-64 letters, digits or . _ -", field=f"{path}.id")
    else:
        category_id = raw_id
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be 1-{MAX_NAME_LENGTH} characters", field=f"{path}.name")
    return Category(
        category_id,
        name.strip(),
        tuple(_categories(value.get("categories"), f"{path}.categories", depth + 1, counter)),
        _markets(value.get("markets"), f"{path}.markets"),
    )


def _markets(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput(f"{path} must be a JSON array of market ids", field=path)
    if len(value) > MAX_MARKETS_PER_CATEGORY:
        raise InvalidInput(f"a category holds at most {MAX_MARKETS_PER_CATEGORY} markets", field=path)
    seen: set[str] = set()
    for i, market_id in enumerate(value):
        if not isinstance(market_id, str) or not market_id:
            raise InvalidInput(f"{path}.{i} must be a market id", field=f"{path}.{i}")
        if market_id in seen:
            raise InvalidInput(f"market {market_id} is listed twice in the category", field=f"{path}.{i}")
        seen.add(market_id)
    return tuple(value)


def unknown_markets(tree: Sequence[Category], known: set[str]) -> list[tuple[str, str]]:
    """(market id, field path) of every reference in the tree to a market not in ``known``."""
    return [
        (market_id, f"{where}.markets.{i}")
        for category, where in walk(tree)
        for i, market_id in enumerate(category.markets)
        if market_id not in known
    ]


def referenced_markets(tree: Sequence[Category]) -> set[str]:
    return {m for category, _ in walk(tree) for m in category.markets}


def without_hidden(tree: Sequence[Category], markets: Mapping[str, MarketRef]) -> list[Category]:
    """The tree as traders see it: hidden markets left out (their categories stay)."""
    return [
        Category(
            c.id,
            c.name,
            tuple(without_hidden(c.categories, markets)),
            tuple(m for m in c.markets if m in markets and not markets[m].is_hidden),
        )
        for c in tree
    ]
