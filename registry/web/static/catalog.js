// The catalog's only script (served by the app; the CSP allows no inline script).
// Progress bars that follow registrations (one long poll), the copy button, and adding file rows.
"use strict";

(function () {
  function formatSize(bytes) {
    if (typeof bytes !== "number") return "unknown size";
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var size = bytes, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return unit === 0 ? size + " bytes" : size.toFixed(1) + " " + units[unit];
  }

  function percent(done, total) {
    if (!total) return null;
    return Math.floor((100 * done) / total);
  }

  function setBar(bar, value) {
    if (value === null) { bar.removeAttribute("value"); bar.textContent = ""; return; }
    bar.value = value;
    bar.textContent = value + "%";
  }

  function render(section, status) {
    section.querySelector("[data-role=state]").textContent = status.state;
    section.querySelector("[data-role=message]").textContent = status.message || "";
    var copied = 0, total = 0, known = true;
    status.files.forEach(function (file) {
      copied += file.bytes_copied;
      if (typeof file.size === "number") total += file.size; else known = false;
      var row = null;
      section.querySelectorAll("li[data-file]").forEach(function (li) {
        if (li.getAttribute("data-file") === file.name) row = li;
      });
      if (!row) return;
      var value = typeof file.size === "number" && file.size > 0 ? percent(file.bytes_copied, file.size)
        : (file.state === "Finished" ? 100 : null);
      setBar(row.querySelector("progress"), value);
      var text = formatSize(file.bytes_copied) + " of " + formatSize(file.size) + " · " + file.state;
      if (file.phase === "hashing") text += " · hashing, " + formatSize(file.bytes_hashed || 0) + " read";
      row.querySelector("[data-role=file-text]").textContent = text;
    });
    var whole = known && total > 0 ? percent(copied, total) : (known && status.state === "Finished" ? 100 : null);
    setBar(section.querySelector("[data-role=total]"), whole);
    section.querySelector("[data-role=total-text]").textContent =
      known ? formatSize(copied) + " of " + formatSize(total) : "sizes not known yet";
  }

  // Every progress bar on the page follows one long poll: the catalog answers as soon as any of
  // the registrations changes (a state change or a copy checkpoint), or after WAIT seconds.
  // Rate limit (the API's, per caller: 2/s, 100/min, 500/10 min): the first look waits FIRST ms
  // (the page and the form post before it stay within 2 a second), and looks are at least
  // INTERVAL ms apart, so following progress costs at most 20 requests a minute, and about 2
  // while nothing changes. A 429 waits its Retry-After; errors back off, doubling up to 30 s.
  var WAIT = 30, FIRST = 1500, INTERVAL = 3000, LONGEST = 30000;

  function followAll(sections) {
    var open = {};
    sections.forEach(function (section) {
      if (section.querySelector("[data-role=state]").textContent === "InProgress") {
        open[section.getAttribute("data-progress")] = section;
      }
    });
    var backoff = 1000;
    function keys() { return Object.keys(open); }
    function poll() {
      if (!keys().length) return;
      var started = Date.now();
      var url = "/api/catalog/registrations/status?wait=" + WAIT + "&models=" +
        keys().map(encodeURIComponent).join(",");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            var refused = new Error("status " + response.status);
            refused.retryAfter = parseInt(response.headers.get("Retry-After") || "0", 10) || 0;
            throw refused;
          }
          return response.json();
        })
        .then(function (body) {
          var seen = {};
          body.registrations.forEach(function (status) {
            var key = status.name + "/" + status.version;
            seen[key] = true;
            if (!open[key]) return;
            render(open[key], status);
            if (status.state !== "InProgress") delete open[key];
          });
          keys().forEach(function (key) { if (!seen[key]) delete open[key]; }); // deleted meanwhile
          backoff = 1000;
          setTimeout(poll, Math.max(0, INTERVAL - (Date.now() - started)));
        })
        .catch(function (problem) {
          backoff = Math.min(backoff * 2, LONGEST); // back off while the registry is unreachable
          setTimeout(poll, Math.max(backoff, 1000 * (problem.retryAfter || 0)));
        });
    }
    if (keys().length) setTimeout(poll, FIRST);
  }

  // The index page's images of the model's own files load through the catalog's file route,
  // which counts against the rate limit like a page (2 a second): an image refused (a 429, or
  // any error) is asked for again a little later, up to five times, so a page with several
  // images fills in within seconds instead of showing broken ones.
  function retryImages(root) {
    root.querySelectorAll("img").forEach(function (img) {
      var source = img.getAttribute("src") || "";
      if (source.indexOf("/api/catalog/model/") !== 0) return; // https images are not ours to retry
      var tries = 0;
      function again() {
        if (tries >= 5) return;
        tries += 1;
        setTimeout(function () {
          img.src = source + (source.indexOf("?") < 0 ? "?" : "&") + "try=" + tries;
        }, 1000 * tries + Math.floor(Math.random() * 500));
      }
      img.addEventListener("error", again);
      if (img.complete && img.naturalWidth === 0) again(); // refused before this script ran
    });
  }

  // Copies a command's text (a readonly textarea, readable and selectable without the script)
  // to the clipboard; where the browser refuses, selects it for Ctrl+C instead.
  function copyButton(button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-copy");
      var field = document.getElementById(id);
      var note = document.querySelector("[data-copied-for='" + id + "']");
      function done(text) { if (note) note.textContent = text; }
      function selectIt() {
        field.focus();
        field.select();
        done("Selected: press Ctrl+C (or Cmd+C) to copy.");
      }
      done("");
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(function () { done("Copied."); }, selectIt);
      } else {
        selectIt();
      }
    });
  }

  function addFileRows(button) {
    button.addEventListener("click", function () {
      var rows = document.querySelector("[data-file-rows]");
      var last = rows.lastElementChild;
      var index = rows.children.length;
      var row = last.cloneNode(true);
      row.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
      row.querySelectorAll("input").forEach(function (input) {
        var kind = input.name; // file_name or file_url
        input.id = kind + "_" + index;
        input.value = "";
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      });
      row.querySelectorAll("label").forEach(function (label) {
        var kind = label.getAttribute("for").replace(/_\d+$/, "");
        label.setAttribute("for", kind + "_" + index);
        label.textContent = (kind === "file_name" ? "File name " : "Source URL ") + (index + 1);
      });
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    followAll(document.querySelectorAll("[data-progress]"));
    document.querySelectorAll(".markdown").forEach(retryImages);
    document.querySelectorAll("[data-copy]").forEach(copyButton);
    document.querySelectorAll("[data-add-file]").forEach(addFileRows);
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
