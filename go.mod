module github.com/chatd/chatd

go 1.26
