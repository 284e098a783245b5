/* Launch Stack and Update Stack, step one: only the fields of the chosen template source are shown (all of
 * them without JavaScript; the form checks the chosen one's either way; "keep the current template" has none). */
(function () {
  "use strict";
  const FIELDS = { example: "id_example", text: "id_template_text", file: "id_template_file" };

  function show() {
    const chosen = document.querySelector('#template-form input[name="source"]:checked');
    Object.entries(FIELDS).forEach(function ([source, id]) {
      const input = document.getElementById(id);
      const field = input && input.closest(".field");
      if (field) field.hidden = chosen !== null && chosen.value !== source;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("template-form");
    if (!form) return;
    form.addEventListener("change", show);
    show();
  });
})();
