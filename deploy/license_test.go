package deploy

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLicense checks that LICENSE is the Apache License 2.0 with the
// project's copyright, and that every file that speaks of a licence agrees
// with it: a header pointing at "the repository's LICENSE file", or an SPDX
// identifier, which must then be Apache-2.0.
func TestLicense(t *testing.T) {
	t.Parallel()
	lic := readFile(t, "LICENSE")
	for _, want := range []string{
		"                                 Apache License\n                           Version 2.0, January 2004\n",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"END OF TERMS AND CONDITIONS",
		`Licensed under the Apache License, Version 2.0 (the "License");`,
	} {
		if !bytes.Contains(lic, []byte(want)) {
			t.Errorf("LICENSE lacks %q: want the Apache License 2.0, whole", want)
		}
	}
	if !regexp.MustCompile(`(?m)^   Copyright 20\d\d The encryptiond Authors$`).Match(lic) {
		t.Errorf("LICENSE: want the appendix's copyright line filled in as \"Copyright YEAR The encryptiond Authors\"")
	}

	spdx := regexp.MustCompile(`SPDX-License-Identifier:\s*(\S+)`)
	pointers := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".build", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".proto", ".sh", ".yaml", ".yml", ".md":
		default:
			if d.Name() != "Dockerfile" && d.Name() != "Makefile" {
				return nil
			}
		}
		b := readFile(t, strings.TrimPrefix(path, root+string(filepath.Separator)))
		if bytes.Contains(b, []byte("see the repository's LICENSE file")) {
			pointers++
		}
		for _, m := range spdx.FindAllSubmatch(b, -1) {
			if id := string(m[1]); id != "Apache-2.0" && d.Name() != "license_test.go" {
				t.Errorf("%s: SPDX-License-Identifier %s, but LICENSE is Apache-2.0", path, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pointers == 0 {
		t.Errorf("no file points at the repository's LICENSE file; the proto's header used to")
	}
}
