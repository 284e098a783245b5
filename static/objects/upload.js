/* The Object Store panel's upload (templates/objects/container.html): the same multipart form, sent
 * with XMLHttpRequest so that its progress events drive the bar; the server streams the file to the
 * objects service. Without script the form posts as usual. */
(function () {
  "use strict";
  function setUp() {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    form.addEventListener("submit", function (e) {
      const input = form.querySelector('input[type="file"]');
      if (!input || !input.files.length) return;  // let the server say what is missing
      e.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false;
      bar.value = 0;
      status.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) bar.value = Math.round((100 * p.loaded) / p.total);
      });
      xhr.addEventListener("load", function () {
        let answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = { error: "Refused (" + xhr.status + ")." }; }
        if (xhr.status === 200) {
          status.textContent = "Uploaded " + answer.name + ".";
          location.reload();
        } else {
          status.textContent = answer.error || "Refused.";
          status.dataset.state = "failed";
        }
      });
      xhr.addEventListener("error", function () { status.textContent = "No answer from the server."; });
      xhr.send(new FormData(form));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
