"""Context from outside the file being edited: the user's other files and the data files it reads.

`workspace_index` keeps the workspace's Python files as chunks and top-level definitions,
`retrieval` picks snippets for one request, `data_headers` reads the column names of the
data files a file loads by a path it names (worked out by `read_paths`, also through the
file's own loader functions: `loader_reads`; `calls` finds where a call's arguments end). None of it reads a file outside the workspace
folders, and none of it imports anything of ours beyond `inference`.
"""

# What a prompt gets besides the file: nothing, the other files, the data files' columns, or both.
CONTEXT_MODES = ("none", "repo", "data", "all")


def context_mode(repo: bool, data: bool) -> str:
    """The mode for the server's two switches (settings `repoContext`, `dataContext`)."""
    return {(False, False): "none", (True, False): "repo", (False, True): "data", (True, True): "all"}[(repo, data)]
