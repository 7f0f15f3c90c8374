//go:build !unix

package main

// privateFiles has nothing to do where there is no umask (Windows: files
// take the folder's ACL, and the data folder is the user's own).
func privateFiles() {}
