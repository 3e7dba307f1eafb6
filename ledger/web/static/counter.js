// The counter page: keep the scan field ready for the next scan, and scan with the camera where the
// browser has the BarcodeDetector API (progressive enhancement: without it, the USB scanner or typing works).
"use strict";
(function () {
  const form = document.getElementById("scan-form");
  const field = document.getElementById("scan");
  const button = document.getElementById("camera");
  const video = document.getElementById("camera-view");
  if (!form || !field) { return; }
  // The next scan always lands in the field: a scanner's Enter must never press "mark as used".
  field.focus();
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !button || !video) { return; }
  button.hidden = false;
  let stream = null;
  async function stop() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); stream = null; }
    video.hidden = true;
  }
  button.addEventListener("click", async function () {
    if (stream) { await stop(); return; }
    try {
      const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const look = async function () {
        if (!stream) { return; }
        const codes = await detector.detect(video).catch(function () { return []; });
        if (codes.length > 0) {
          field.value = codes[0].rawValue;
          await stop();
          form.requestSubmit();
          return;
        }
        window.requestAnimationFrame(look);
      };
      window.requestAnimationFrame(look);
    } catch (error) {
      await stop();
      button.hidden = true;
    }
  });
})();
