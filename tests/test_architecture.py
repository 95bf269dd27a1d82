"""The package's shape: no import cycle between textclf's modules, function-level imports included."""

import ast

from conftest import REPO


def module_imports() -> dict[str, set[str]]:
    """``{module: textclf modules it imports}``, read statically from every import statement, at any depth."""
    root = REPO / "textclf"
    modules = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
               for path in root.rglob("*.py")}
    graph = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                imported.add(node.args[0].value)
        # The package itself (textclf/__init__.py re-exports the public API) is not a module edge.
        graph[name] = (imported & modules) - {name, "textclf"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (each once, as the path that closes it)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_textclf_has_no_import_cycle():
    graph = module_imports()
    assert "textclf.training.setup" in graph["textclf.training.loop"]  # The reader sees from-imports...
    assert "textclf.log" in graph["textclf.training.cluster"]  # ...and imports inside functions.
    assert cycles(graph) == []


def room_imports(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``{room: rooms it imports}``; a room is a folder of textclf (``train``) or a top-level module (``cli``)."""
    def room(module):
        return module.split(".")[1]

    rooms: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module != "textclf":  # The package's __init__ re-exports the public API from every room.
            rooms.setdefault(room(module), set()).update(room(target) for target in targets if room(target) != room(module))
    return rooms


def test_the_rooms_depend_on_each_other_in_one_direction():
    rooms = room_imports(module_imports())
    assert cycles(rooms) == []
    # The layers docs/ARCHITECTURE.md describes: text and model know nothing of data, training or serving (the
    # wide branch's layer reads text's n-grams); errors (TextclfError) is the one module every room may import.
    assert rooms.pop("errors", set()) == set()
    rooms = {name: targets - {"errors"} for name, targets in rooms.items()}
    assert rooms["text"] == set() and rooms["model"] == {"config", "text"} and rooms["data"] == {"log"}
    assert "training" not in rooms["serve"] and "serve" not in rooms["data"] and "training" not in rooms["data"]
    # The command calls the rooms; nothing calls the command.
    assert {room for room, targets in rooms.items() if "cli" in targets} == set()
    assert rooms["cli"] >= {"training", "serve"}


def test_no_public_name_hides_a_room():
    import importlib

    import textclf

    rooms = sorted(path.name for path in (REPO / "textclf").iterdir() if (path / "__init__.py").is_file())
    assert rooms == ["cli", "data", "evaluation", "model", "serve", "text", "training"]
    # The command is no part of the API textclf/__init__.py re-exports: nothing of that name may stand there.
    assert "cli" not in vars(textclf) or vars(textclf)["cli"] is importlib.import_module("textclf.cli")
    importlib.import_module("textclf.cli")
    # `import textclf.training.run` then `textclf.training.run` must reach the module, not a function of that name.
    assert all(getattr(textclf, room) is importlib.import_module(f"textclf.{room}") for room in rooms)
