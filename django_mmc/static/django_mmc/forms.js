/* django_mmc admin forms: a little help, nothing required.
 *
 * - <select data-mmc-autosubmit="ID">: choosing an option submits the form
 *   through the button with that id (which re-renders the page with the
 *   chosen template's parameter fields). Without JavaScript that button is
 *   there to click; with it, it is hidden.
 * - [data-preview]: the template's preview, kept in step with the
 *   parameter fields (input.mmc-param) of the same form as they are typed.
 * - form[data-mmc-confirm]: asks that question before the form is sent
 *   (closing a dialogue).
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    document.querySelectorAll("select[data-mmc-autosubmit]").forEach(function (select) {
      var button = document.getElementById(select.getAttribute("data-mmc-autosubmit"));
      if (!button) { return; }
      button.hidden = true;
      select.addEventListener("change", function () { button.click(); });
    });

    document.querySelectorAll("[data-preview]").forEach(function (preview) {
      var form = preview.closest("form");
      if (!form) { return; }
      var source = preview.getAttribute("data-preview") || "";
      var inputs = form.querySelectorAll("input.mmc-param");
      function render() {
        var text = source;
        inputs.forEach(function (input) {
          var name = input.getAttribute("data-parameter");
          if (input.value) { text = text.split("{{" + name + "}}").join(input.value); }
        });
        preview.textContent = text;  // textContent: what is typed is never HTML
      }
      inputs.forEach(function (input) { input.addEventListener("input", render); });
    });

    document.querySelectorAll("form[data-mmc-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-mmc-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
