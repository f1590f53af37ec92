"""The README and the pages under docs/ link only to files (and headings) that exist."""

import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "crates/local-s3/README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def broken_links(page, root=ROOT):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{page.relative_to(root)}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{page.relative_to(root)}: {target} (no such heading)")
    return broken


class DocsTest(unittest.TestCase):
    def test_the_pages_exist(self):
        for name in ["benchmark", "reliability", "deploy", "report", "scale-out"]:
            self.assertTrue((ROOT / "docs" / f"{name}.md").exists(), name)

    def test_every_link_resolves_to_a_file_in_the_repository(self):
        broken = [link for page in PAGES for link in broken_links(page)]
        self.assertEqual(broken, [])

    def test_the_readme_is_a_front_page(self):
        self.assertLessEqual(len((ROOT / "README.md").read_text().splitlines()), 250)

    def test_a_broken_link_is_found(self):
        scratch = ROOT / "target" / "docs-test"
        scratch.mkdir(parents=True, exist_ok=True)
        page = scratch / "page.md"
        page.write_text("# Title\n[ok](#title) [gone](nowhere.md) [bad anchor](#nothing)\n")
        self.assertEqual(len(broken_links(page, root=scratch)), 2)


if __name__ == "__main__":
    unittest.main()
