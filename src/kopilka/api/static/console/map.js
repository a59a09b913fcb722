// The territorial map (/admin/reports/map): Leaflet with the regions GeoJSON as the base
// layer (no tiles unless KOPILKA_MAP_TILES is set), a choropleth whose colours the server
// computed (the same as in the PNG export), store points with popups, and the members
// far from every store as a heat layer with circles.  Data: the element's data-src JSON.
(function () {
  "use strict";
  var el = document.getElementById("territory-map");
  if (!el || !window.L) { return; }
  var lang = el.getAttribute("data-lang") || "en";
  var nf0 = new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-GB", { maximumFractionDigits: 0 });
  var nf1 = new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-GB", { maximumFractionDigits: 1 });
  var nf2 = new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  function label(name) { return el.getAttribute("data-label-" + name) || name; }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch];
    });
  }
  function money(s) { return nf2.format(Number(s)) + " ₽"; }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  var select = document.getElementById("map-measure");
  function measure() { return select ? select.value : "members"; }

  function regionLine(r) {
    return "<strong>" + esc(r.name) + "</strong><br>" +
      esc(label("stores")) + ": " + r.stores + "<br>" +
      esc(label("members")) + ": " + nf0.format(r.members) + "<br>" +
      esc(label("sales")) + ": " + money(r.sales) + "<br>" +
      esc(label("mps")) + ": " + nf1.format(Number(r.members_per_store));
  }

  function storePopup(s) {
    return "<strong>" + esc(s.name) + "</strong> (" + esc(s.code) + ")<br>" + esc(s.city) + "<br>" +
      esc(label("members")) + ": " + nf0.format(s.members) + "<br>" +
      esc(label("sales")) + ": " + money(s.sales) + "<br>" +
      esc(label("receipts")) + ": " + nf0.format(s.receipts);
  }

  function farPopup(p) {
    return "<strong>" + esc(p.name) + "</strong><br>" +
      esc(label("members")) + ": " + nf0.format(p.members) + "<br>" +
      esc(label("distance")) + ": " + nf1.format(p.distance_km) + "<br>" +
      esc(label("nearest")) + ": " + esc(p.nearest_store);
  }

  function legendHtml(data) {
    var m = data.measures.filter(function (x) { return x.key === measure(); })[0];
    if (!m) { return ""; }
    var rows = m.legend.map(function (c) {
      return '<i style="background:' + esc(c.colour) + '"></i>' + esc(c.label);
    });
    return "<strong>" + esc(m.label) + "</strong>" + rows.join("<br>");
  }

  // Albers equal-area conic for Russia (standard parallels 52° and 64°, central meridian
  // 105°E), as in the PNG export: used when there are no tiles (tiles are Web Mercator).
  var R = 6371008.8;
  var RAD = Math.PI / 180;
  var N = (Math.sin(52 * RAD) + Math.sin(64 * RAD)) / 2;
  var C = Math.cos(52 * RAD) * Math.cos(52 * RAD) + 2 * N * Math.sin(52 * RAD);
  var RHO0 = R * Math.sqrt(C) / N;
  var ALBERS = {
    project: function (ll) {
      var rho = R * Math.sqrt(C - 2 * N * Math.sin(ll.lat * RAD)) / N;
      var theta = N * (ll.lng - 105) * RAD;
      return L.point(rho * Math.sin(theta), RHO0 - rho * Math.cos(theta));
    },
    unproject: function (p) {
      var rho = Math.sqrt(p.x * p.x + (RHO0 - p.y) * (RHO0 - p.y));
      var theta = Math.atan2(p.x, RHO0 - p.y);
      var s = (C - Math.pow(rho * N / R, 2)) / (2 * N);
      return L.latLng(Math.asin(Math.max(-1, Math.min(1, s))) / RAD, 105 + theta / N / RAD);
    },
    bounds: L.bounds([-2e7, -2e7], [2e7, 2e7]),
  };
  var K = 1 / 16000; // at zoom 0 a pixel is 16 km
  var CRS_ALBERS = L.extend({}, L.CRS, {
    code: "kopilka:albers-russia",
    projection: ALBERS,
    transformation: new L.Transformation(K, 0, -K, 0),
    scale: function (zoom) { return Math.pow(2, zoom); },
    zoom: function (scale) { return Math.log(scale) / Math.LN2; },
    infinite: true,
  });

  // Fit the regions' projected extent (a conic's lat/lng box is not its pixel box).
  function fitAlbers(map, geo) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    geo.features.forEach(function (f) {
      f.geometry.coordinates.forEach(function (polygon) {
        polygon[0].forEach(function (c) {
          var p = ALBERS.project({ lat: c[1], lng: c[0] });
          x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
        });
      });
    });
    var size = map.getSize();
    var zoom = Math.log2(Math.min(size.x / ((x1 - x0) * K), size.y / ((y1 - y0) * K))) - 0.02;
    map.setView(ALBERS.unproject(L.point((x0 + x1) / 2, (y0 + y1) / 2)), zoom, { animate: false });
  }

  function draw(geo, data) {
    el.innerHTML = "";
    var tiled = !!(data.tiles && data.tiles.url);
    var options = { renderer: L.svg(), zoomSnap: 0, zoomDelta: 0.5, worldCopyJump: false };
    if (!tiled) { options.crs = CRS_ALBERS; }
    var map = L.map(el, options);
    var byIso = {};
    data.regions.forEach(function (r) { byIso[r.iso] = r; });
    var overlays = {};
    if (tiled) {
      L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution || "" }).addTo(map);
    }
    var fillOpacity = data.tiles ? 0.6 : 1;
    function style(feature) {
      var r = byIso[feature.properties.iso];
      return {
        className: "map-region",
        fillColor: r ? r.colour[measure()] : "#eeeeee",
        fillOpacity: fillOpacity,
        color: "#888888",
        weight: 0.7,
      };
    }
    var regions = L.geoJSON(geo, {
      style: style,
      onEachFeature: function (feature, layer) {
        var r = byIso[feature.properties.iso];
        if (r) { layer.bindTooltip(regionLine(r), { sticky: true }); }
      },
    }).addTo(map);
    if (tiled) {
      map.fitBounds(regions.getBounds(), { padding: [4, 4] });
    } else {
      fitAlbers(map, geo);
      map.setMinZoom(map.getZoom() - 1);
    }
    map.attributionControl.addAttribution("Regions: GMT DCW (LGPL-3+)");

    var far = data.far.places;
    if (far.length && L.heatLayer) {
      var max = Math.max.apply(null, far.map(function (p) { return p.members; }));
      var heat = L.heatLayer(far.map(function (p) { return [p.lat, p.lon, p.members / max]; }),
        { radius: 28, blur: 20, maxZoom: 6 });
      var circles = far.map(function (p) {
        return L.circleMarker([p.lat, p.lon], {
          className: "map-far", radius: 2 + 1.2 * Math.sqrt(p.members),
          color: "#80009f", weight: 1, fillColor: "#80009f", fillOpacity: 0.25,
        }).bindPopup(farPopup(p));
      });
      var farLayer = L.layerGroup([heat].concat(circles)).addTo(map);
      overlays[label("heat")] = farLayer;
    }
    var stores = L.layerGroup(data.stores.filter(function (s) { return s.lat !== null && s.lon !== null; })
      .map(function (s) {
        return L.circleMarker([s.lat, s.lon], {
          className: "map-store", radius: 5, color: "#ffffff", weight: 1.5,
          fillColor: "#1f5fbf", fillOpacity: 1,
        }).bindPopup(storePopup(s));
      })).addTo(map);
    overlays[label("stores")] = stores;
    L.control.layers(null, overlays, { collapsed: false }).addTo(map);

    var legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      var div = L.DomUtil.create("div", "map-legend");
      div.innerHTML = legendHtml(data);
      return div;
    };
    legend.addTo(map);
    if (select) {
      select.addEventListener("change", function () {
        regions.setStyle(style);
        var div = legend.getContainer();
        if (div) { div.innerHTML = legendHtml(data); }
        document.querySelectorAll("a[href^='/admin/reports/map.']").forEach(function (a) {
          var href = a.getAttribute("href");
          a.setAttribute("href", href.replace(/([?&]measure=)[^&]*/, "$1" + encodeURIComponent(measure())));
        });
      });
    }
    el.setAttribute("data-drawn", "1");
  }

  Promise.all([getJSON(el.getAttribute("data-regions")), getJSON(el.getAttribute("data-src"))])
    .then(function (res) { draw(res[0], res[1]); })
    .catch(function (err) {
      el.textContent = String(err);
      el.setAttribute("data-error", "1");
    });
})();
