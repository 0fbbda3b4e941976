// Record form: add creator rows from the formset's empty form (Django's __prefix__ pattern).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var add = document.getElementById("creator-add");
    var rows = document.getElementById("creator-rows");
    var template = document.getElementById("creator-template");
    var total = document.getElementById("id_creators-TOTAL_FORMS");
    if (!add || !rows || !template || !total) return;
    add.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      rows.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      var first = rows.lastElementChild.querySelector("input[type=text]");
      if (first) first.focus();
    });
  });
})();
