// The deep-zoom viewer of an image preview: OpenSeadragon (static/vendor/) on the object's
// IIIF Image API 3.0 service (repository/previews/). The element #preview-viewer names the
// info.json of the default plane; a select (#preview-plane), when the image has several
// channels or z planes, switches to another plane's info.json.
(function () {
  "use strict";

  function start() {
    var element = document.getElementById("preview-viewer");
    if (!element || typeof OpenSeadragon === "undefined") {
      return;
    }
    var viewer = OpenSeadragon({
      element: element,
      prefixUrl: element.dataset.prefixUrl,
      tileSources: element.dataset.infoUrl,
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
    var planes = document.getElementById("preview-plane");
    if (planes) {
      planes.addEventListener("change", function () {
        element.dataset.state = "opening";
        viewer.open(planes.value);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
