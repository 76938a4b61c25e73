"""Route templates: matching, decoding and ASP.NET-style precedence."""

from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, RouteMatch, Router, RouteTemplate, check_constraint


def _router() -> Router[str]:
    router: Router[str] = Router("api")
    # Registered in an order that would give the wrong answer without precedence.
    router.add("v1.0/model/{name}/{version}/{owner}", ["GET", "PUT"], "owner")
    router.add("v1.0/model/{name}/{version}/status", ["GET"], "status")
    router.add("v1.0/model/clone/{name}/{version}", ["POST"], "clone")
    router.add("files/{*path}", None, "files")
    router.add("files/special/{name}", None, "special")
    return router


def _match(router: Router[str], method: str, path: str) -> RouteMatch[str]:
    result = router.match(method, path)
    assert isinstance(result, RouteMatch), result
    return result


def test_literal_segment_beats_parameter() -> None:
    result = _match(_router(), "GET", "/api/v1.0/model/resnet/3/status")
    assert result.target == "status"
    assert result.route_params == {"name": "resnet", "version": "3"}


def test_parameter_route_still_matches_other_values() -> None:
    result = _match(_router(), "GET", "/api/v1.0/model/resnet/3/alice")
    assert result.target == "owner"
    assert result.route_params == {"name": "resnet", "version": "3", "owner": "alice"}


def test_earlier_literal_beats_later_literal() -> None:
    result = _match(_router(), "POST", "/api/v1.0/model/clone/resnet/3")
    assert result.target == "clone"
    assert result.route_params == {"name": "resnet", "version": "3"}


def test_method_mismatch_falls_through_to_next_route() -> None:
    # The method is a route constraint: GET on the clone path matches {name}/{version}/{owner}.
    result = _match(_router(), "GET", "/api/v1.0/model/clone/resnet/3")
    assert result.target == "owner"


def test_method_not_allowed_vs_not_found() -> None:
    router = _router()
    result = router.match("DELETE", "/api/v1.0/model/resnet/3/status")
    assert isinstance(result, MethodNotAllowed)
    assert result.allowed == frozenset({"GET", "PUT"})
    assert router.match("GET", "/api/v1.0/model/resnet") is None
    assert router.match("GET", "/elsewhere/v1.0/model/a/b/c") is None


def test_literals_are_case_insensitive_and_params_keep_case() -> None:
    result = _match(_router(), "get", "/API/V1.0/Model/ResNet/3/STATUS")
    assert result.target == "status"
    assert result.route_params["name"] == "ResNet"


def test_params_are_url_decoded_per_segment() -> None:
    result = _match(_router(), "GET", "/api/v1.0/model/a%2Fb%20c/%C3%A9/status")
    assert result.route_params == {"name": "a/b c", "version": "é"}


def test_catch_all_takes_the_rest_and_loses_to_parameters() -> None:
    router = _router()
    assert _match(router, "GET", "/api/files/a/b%20c/d.txt").route_params == {"path": "a/b c/d.txt"}
    assert _match(router, "GET", "/api/files/special/x").target == "special"
    assert _match(router, "GET", "/api/files/special/x/y").target == "files"
    # A catch-all is optional.
    assert _match(router, "GET", "/api/files").route_params == {}


def test_trailing_slash_is_ignored() -> None:
    assert _match(_router(), "GET", "/api/v1.0/model/a/1/status/").target == "status"


def test_constraints_are_stripped_from_names_and_checked() -> None:
    router: Router[str] = Router("api")
    router.add("items/{name:alpha}", None, "alpha")
    router.add("items/{id:int}", None, "int")
    router.add("items/{other}", None, "other")
    assert _match(router, "GET", "/api/items/42").route_params == {"id": "42"}
    assert _match(router, "GET", "/api/items/abc") == RouteMatch(
        "alpha", {"name": "abc"}, "api/items/{name:alpha}"
    )
    assert _match(router, "GET", "/api/items/a-1").target == "other"


def test_optional_and_default_parameters() -> None:
    template = RouteTemplate.parse("page/{n:int?}", "api")
    assert template.match("/api/page") == {}
    assert template.match("/api/page/2") == {"n": "2"}
    assert RouteTemplate.parse("page/{n=1}", "").match("/page") == {"n": "1"}


def test_empty_prefix_and_function_name_route() -> None:
    router: Router[str] = Router("")
    router.add("health", ["GET"], "health")
    assert _match(router, "GET", "/health").target == "health"


def test_complex_segment() -> None:
    assert RouteTemplate.parse("f/{file}.{ext}").match("/f/a.tar.gz") == {"file": "a.tar", "ext": "gz"}


def test_precedence_digits() -> None:
    template = RouteTemplate.parse("v1.0/model/{name:alpha}/{version}/{*rest}", "api")
    assert template.precedence == (1, 1, 1, 3, 4, 5)


def test_catch_all_must_be_last() -> None:
    with pytest.raises(ValueError, match="catch-all"):
        RouteTemplate.parse("{*a}/b")


@pytest.mark.parametrize(
    ("constraint", "value", "expected"),
    [
        ("int", "-12", True),
        ("int", "99999999999", False),
        ("long", "99999999999", True),
        ("bool", "True", True),
        ("guid", "6f9619ff-8b86-d011-b42d-00c04fc964ff", True),
        ("guid", "nope", False),
        ("minlength(3)", "ab", False),
        ("length(1,3)", "abc", True),
        ("range(1,5)", "6", False),
        ("regex(^v\\d+$)", "V12", True),
        ("unknownconstraint", "x", True),
    ],
)
def test_constraints(constraint: str, value: str, expected: bool) -> None:
    assert check_constraint(constraint, value) is expected
