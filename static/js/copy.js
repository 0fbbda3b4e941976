// Copy buttons (templates/repository/public/_citations.html): copy the text of the element
// named by data-copy-target and say so in the status beside the button.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  function copyBySelection(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    return copied;
  }
  ready(function () {
    document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
      var target = document.getElementById(button.dataset.copyTarget);
      var status = button.parentElement.querySelector(".copy-status");
      if (!target) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = target.textContent.trim();
        var done = function (ok) {
          if (status) status.textContent = ok ? button.dataset.copied : button.dataset.copyFailed;
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(
            function () { done(true); },
            function () { done(copyBySelection(target)); }
          );
        } else {
          done(copyBySelection(target));
        }
      });
    });
  });
})();
