"""The references registry: the chapter's entries, a user's own ids, and one-line errors for bad entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.schema import SpecError
from harness.specs import references
from harness.specs.spec import load_spec, load_specs

ROOT = Path(__file__).resolve().parents[2]

ENTRY = {"id": "X1", "title": "my result", "printed": "42", "reading": "equals 42",
         "sources": [{"book": "My notes", "edition": "first", "section": "1.1", "url": "https://example.org/1"}]}
SPEC = {"name": "mine", "title": "my spec", "kind": "edge_kernel", "seeds": [0],
        "settings": {"layer": "handwritten", "init": "randn", "lr": 0.01, "steps": 3},
        "references": [{"metric": "final_loss", "source": "X1", "basis": "chosen before measuring",
                        "at_most": 1.0e9}]}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def test_the_chapter_s_entries_are_complete_and_every_spec_cites_one():
    entries = references.registry((ROOT / "references",))
    assert {"A1", "A13", "B1", "B3", "C1", "C3", "D1", "D2"} <= set(entries)
    for entry, _ in entries.values():
        assert entry.printed.strip() and entry.reading.strip()
        assert any(c.url for c in entry.sources) or entry.id.startswith("H")  # a public address, or our own target
    every = [str(ROOT / "experiments" / d) for d in ("", "studies", "peer")]
    cited = {r.source for spec in load_specs(every) for r in spec.references}
    assert cited <= set(entries)


def test_a_user_cites_an_id_of_their_own_beside_the_spec(tmp_path):
    write(tmp_path / "references" / "mine.yaml", [ENTRY])
    spec = load_spec(write(tmp_path / "experiments" / "mine.yaml", SPEC))
    assert spec.ref_ids == ["X1"] and spec.cited["X1"]["title"] == "my result"
    chapter = load_spec(write(tmp_path / "experiments" / "b1.yaml",
                              SPEC | {"name": "b1", "references": [SPEC["references"][0] | {"source": "B1"}]}))
    assert chapter.cited["B1"]["sources"][0]["url"].startswith("https://")  # the chapter's ids stay citable


def test_a_printed_basis_quotes_the_entry_word_for_word(tmp_path):
    write(tmp_path / "references" / "mine.yaml", [ENTRY | {"printed": "final loss\n  42 after 3 steps"}])
    ref = SPEC["references"][0] | {"basis": "printed", "quote": "final loss 42"}
    assert load_spec(write(tmp_path / "experiments" / "mine.yaml", SPEC | {"references": [ref]})).references
    wrong = SPEC | {"references": [ref | {"quote": "final loss 43"}]}
    with pytest.raises(SpecError, match=r"references\[0\]\.quote: 'final loss 43' is not in what X1 printed"):
        load_spec(write(tmp_path / "experiments" / "mine.yaml", wrong))


@pytest.mark.parametrize("change,message", [
    ({"title": ""}, "[0].title: String should have at least 1 character"),
    ({"sources": []}, "[0].sources: List should have at least 1 item"),
    ({"sources": [ENTRY["sources"][0] | {"url": "example.org"}]}, "[0].sources[0].url: url must be an http(s)"),
    ({"id": "no spaces"}, "[0].id: String should match pattern"),
    ({"colour": "red"}, "[0]: unknown field 'colour'"),
])
def test_a_bad_entry_is_one_line_naming_the_file_and_field(tmp_path, change, message):
    path = write(tmp_path / "references" / "mine.yaml", [ENTRY | change])
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path / "experiments" / "mine.yaml", SPEC))
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)


def test_an_id_defined_twice_is_an_error(tmp_path):
    write(tmp_path / "references" / "a.yaml", [ENTRY])
    second = write(tmp_path / "references" / "b.yaml", [ENTRY])
    with pytest.raises(SpecError, match=r"b\.yaml: \[0\]\.id: 'X1' is already defined in .*a\.yaml"):
        load_spec(write(tmp_path / "experiments" / "mine.yaml", SPEC))
    second.unlink()
    write(tmp_path / "references" / "b.yaml", [ENTRY | {"id": "B1"}])  # the chapter's id, taken again
    with pytest.raises(SpecError, match="'B1' is already defined"):
        load_spec(write(tmp_path / "experiments" / "mine.yaml", SPEC))


def test_the_registry_is_read_once_until_a_file_changes(tmp_path):
    path = write(tmp_path / "references" / "mine.yaml", [ENTRY])
    dirs = (tmp_path / "references",)
    first = references.registry(dirs)
    hits = references._registry.cache_info().hits
    again = references.registry(dirs)
    assert again == first and references._registry.cache_info().hits == hits + 1
    again.clear()  # a caller's copy: the cache keeps its own
    assert set(references.registry(dirs)) == {"X1"}
    write(path, [ENTRY, ENTRY | {"id": "X2", "sources": [dict(ENTRY["sources"][0])]}])  # rewritten: another size
    assert set(references.registry(dirs)) == {"X1", "X2"}
    write(tmp_path / "references" / "more.yaml", [ENTRY | {"id": "X3"}])  # a new file
    assert set(references.registry(dirs)) == {"X1", "X2", "X3"}
    write(tmp_path / "references" / "twice.yaml", [ENTRY])  # an error is raised again, never cached
    for _ in range(2):
        with pytest.raises(SpecError, match="'X1' is already defined"):
            references.registry(dirs)
