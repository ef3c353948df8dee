"""Build step of the wheel (the metadata is in pyproject.toml): the site's own
files stay where the project's layout keeps them (``site_templates/``,
``mkdocs.yml``, ``docs/``) and are copied into the built package as
``generator/_shipped/``, which :mod:`generator.shipped` reads at run time
(the list of files is ``generator.shipped.FILES``, the only one)."""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = runpy.run_path(str(HERE / "generator" / "shipped.py"))


class BuildWithSiteFiles(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the checkout
        into = Path(self.build_lib) / "generator" / SHIPPED["PACKED"]
        shutil.rmtree(into, ignore_errors=True)
        for name in SHIPPED["FILES"]:
            source, target = HERE / name, into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithSiteFiles})
