import pytest

from tasks_app import store as st


def test_add_returns_increasing_ids():
    s = st.new_store()
    first = st.add(s, "write the README")
    second = st.add(s, "ship it")
    assert first == 1
    assert second == 2


def test_list_keeps_order_and_filters_done():
    s = st.new_store()
    st.add(s, "a")
    b = st.add(s, "b")
    st.done(s, b)
    assert [t["title"] for t in st.list(s)] == ["a", "b"]
    assert [t["title"] for t in st.list(s, include_done=False)] == ["a"]


def test_done_unknown_id_raises():
    s = st.new_store()
    with pytest.raises(KeyError):
        st.done(s, 42)


def test_save_and_load_round_trip(tmp_path):
    s = st.new_store()
    st.add(s, "persist me")
    path = str(tmp_path / "tasks.json")
    st.save(s, path)
    assert st.load(path) == s
    assert st.load(str(tmp_path / "missing.json")) == st.new_store()
