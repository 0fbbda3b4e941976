// A table wider than its box scrolls inside it (.table-wrap): such a box becomes a named,
// focusable group so that keyboard users can scroll it with the arrow keys. Boxes that
// fit stay out of the tab order.
(function () {
  "use strict";
  function label(wrap) {
    var table = wrap.querySelector("table");
    var caption = table && table.querySelector("caption");
    if (caption) return caption.textContent.trim();
    var section = wrap.closest("section");
    var heading = section && section.querySelector("h2, h3");
    return heading ? heading.textContent.trim() : "";
  }
  function update() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "group"); // not a landmark: its section is one already
        var name = label(wrap);
        if (name) wrap.setAttribute("aria-label", name);
        wrap.dataset.scrollable = "true";
      } else if (!scrolls && wrap.dataset.scrollable === "true") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
        delete wrap.dataset.scrollable;
      }
    });
  }
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    update();
    var timer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 150);
    });
  });
})();
