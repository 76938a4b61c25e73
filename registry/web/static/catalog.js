// The catalog's only script (served by the app; the CSP allows no inline script).
// Progress bars that follow a registration, the copy button, and adding file rows.
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

  function follow(section) {
    var url = section.getAttribute("data-status-url");
    var delay = 1000;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (status) {
          render(section, status);
          delay = 1000;
          if (status.state === "InProgress") setTimeout(poll, delay);
        })
        .catch(function () {
          delay = Math.min(delay * 2, 30000); // back off while the registry is unreachable
          setTimeout(poll, delay);
        });
    }
    if (section.querySelector("[data-role=state]").textContent === "InProgress") setTimeout(poll, 500);
  }

  function copyButton(button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-copy");
      var field = document.getElementById(id);
      var note = document.querySelector("[data-copied-for='" + id + "']");
      function done(text) { if (note) note.textContent = text; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(function () { done("Copied."); },
          function () { field.select(); done("Selected: press Ctrl+C to copy."); });
      } else {
        field.select();
        done("Selected: press Ctrl+C to copy.");
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
    document.querySelectorAll("[data-status-url]").forEach(follow);
    document.querySelectorAll("[data-copy]").forEach(copyButton);
    document.querySelectorAll("[data-add-file]").forEach(addFileRows);
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
