//go:build !linux

package server

import "net"

// samePeer: without SO_PEERCRED the socket's 0600 mode in a 0700 directory
// is what keeps other users out.
func samePeer(net.Conn) bool { return true }
