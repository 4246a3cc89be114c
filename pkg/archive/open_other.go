//go:build !unix

package archive

const openFlags = 0
