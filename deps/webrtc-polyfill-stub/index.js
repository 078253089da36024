// No WebRTC: anything that tries to open a peer connection fails loudly instead of silently doing nothing.
class Unavailable {
  constructor() {
    throw new Error('WebRTC is disabled in rackseed');
  }
}
export const RTCPeerConnection = Unavailable;
export const RTCSessionDescription = Unavailable;
export const RTCIceCandidate = Unavailable;
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate };
