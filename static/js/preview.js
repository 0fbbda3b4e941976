// The deep-zoom viewer of an image preview: OpenSeadragon (static/vendor/) on the object's
// IIIF Image API 3.0 service (repository/previews/). On the object page the element
// #preview-viewer names the info.json of the default plane; a select (#preview-plane),
// when the image has several channels or z planes, switches to another plane's info.json.
// On a landing page the viewer sits in a dialog (#preview-dialog) that a thumbnail link
// with data-preview-info opens on that image; without script the link opens the file's
// page.
(function () {
  "use strict";

  // The viewer in `element`, made on first use (in a dialog, once it is shown: the
  // viewer takes its size from its element), then showing `infoUrl`.
  function show(element, infoUrl) {
    element.dataset.state = "opening";
    element.dataset.tilesLoaded = "0";
    if (element.kuraViewer) {
      element.kuraViewer.open(infoUrl);
      return element.kuraViewer;
    }
    var viewer = OpenSeadragon({
      element: element,
      prefixUrl: element.dataset.prefixUrl,
      tileSources: infoUrl,
      drawer: "canvas",
      showNavigator: true,
      crossOriginPolicy: false,
      maxZoomPixelRatio: 2,
      visibilityRatio: 1,
    });
    element.kuraViewer = viewer;
    viewer.addHandler("open", function () {
      element.dataset.state = "open";
    });
    viewer.addHandler("open-failed", function () {
      element.dataset.state = "failed";
    });
    viewer.addHandler("tile-loaded", function () {
      element.dataset.tilesLoaded = String(Number(element.dataset.tilesLoaded || 0) + 1);
    });
    return viewer;
  }

  function dialogStart(dialog, element) {
    var title = document.getElementById("preview-dialog-title");
    var page = document.getElementById("preview-dialog-page");
    document.querySelectorAll("a[data-preview-info]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (typeof dialog.showModal !== "function") {
          return; // no <dialog>: the file's page has the viewer
        }
        event.preventDefault();
        title.textContent = link.dataset.previewName;
        page.href = link.href;
        dialog.showModal();
        show(element, link.dataset.previewInfo);
      });
    });
    document.getElementById("preview-dialog-close").addEventListener("click", function () {
      dialog.close();
    });
  }

  function start() {
    var element = document.getElementById("preview-viewer");
    if (!element || typeof OpenSeadragon === "undefined") {
      return;
    }
    var dialog = document.getElementById("preview-dialog");
    if (dialog) {
      dialogStart(dialog, element);
      return;
    }
    show(element, element.dataset.infoUrl);
    var planes = document.getElementById("preview-plane");
    if (planes) {
      planes.addEventListener("change", function () {
        show(element, planes.value);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
