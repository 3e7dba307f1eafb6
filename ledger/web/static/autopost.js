// Posts the payment gateway's form at once (its button stays for browsers without JavaScript).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autopost]");
  if (form) form.submit();
});
