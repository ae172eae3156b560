// Render the TeX that pymdownx.arithmatex (generic mode) leaves in the page, with the KaTeX
// bundled in docs/vendor/katex (no CDN: formulas render offline). mkdocs-material's document$
// emits on every page shown, instant navigation included.
(function () {
  function render(root) {
    renderMathInElement(root, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true }
      ],
      throwOnError: false
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function (page) { render(page.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { render(document.body); });
  }
})();
