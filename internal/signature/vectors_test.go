package signature

const vectorSecret = "s3cr3t~ key"

// Vectors produced with npm qs 6.17.1 and Node's crypto: the body is parsed
// (JSON.parse, or qs.parse for forms), top-level keys other than sign are
// sorted, then qs.stringify(obj) — canon; qs.stringify with a filter dropping empty
// strings and null — omit; qs.stringify of a recursively key-sorted copy — sorted;
// md5(canon + "&app_key=" + vectorSecret) — sign.
var vectors = []struct {
	name, kind, body          string
	canon, omit, sorted, sign string
}{
	{"basic", "json", `{"app_id":"a1","time_stamp":"1700000000000","nonce_str":"abc","userId":"u 1","name":"你好 世界","avatarUri":"http://x.com/a.png?x=1&y=2"}`,
		"app_id=a1&avatarUri=http%3A%2F%2Fx.com%2Fa.png%3Fx%3D1%26y%3D2&name=%E4%BD%A0%E5%A5%BD%20%E4%B8%96%E7%95%8C&nonce_str=abc&time_stamp=1700000000000&userId=u%201",
		"app_id=a1&avatarUri=http%3A%2F%2Fx.com%2Fa.png%3Fx%3D1%26y%3D2&name=%E4%BD%A0%E5%A5%BD%20%E4%B8%96%E7%95%8C&nonce_str=abc&time_stamp=1700000000000&userId=u%201",
		"app_id=a1&avatarUri=http%3A%2F%2Fx.com%2Fa.png%3Fx%3D1%26y%3D2&name=%E4%BD%A0%E5%A5%BD%20%E4%B8%96%E7%95%8C&nonce_str=abc&time_stamp=1700000000000&userId=u%201",
		"65103691bd3c70cc6f988d0e7d817ddc"},
	{"reserved", "json", `{"s":"~*'!()-._","t":"a+b=c&d%#/?:@","u":"line1\nline2\t"}`,
		"s=~%2A%27%21%28%29-._&t=a%2Bb%3Dc%26d%25%23%2F%3F%3A%40&u=line1%0Aline2%09",
		"s=~%2A%27%21%28%29-._&t=a%2Bb%3Dc%26d%25%23%2F%3F%3A%40&u=line1%0Aline2%09",
		"s=~%2A%27%21%28%29-._&t=a%2Bb%3Dc%26d%25%23%2F%3F%3A%40&u=line1%0Aline2%09",
		"5670e11ac12b172d2c619a0a509baa71"},
	{"nested", "json", `{"senderUserId":"u1","content":{"content":"hi there","extra":{"b":"2","a":"1"}},"messageType":1}`,
		"content%5Bcontent%5D=hi%20there&content%5Bextra%5D%5Bb%5D=2&content%5Bextra%5D%5Ba%5D=1&messageType=1&senderUserId=u1",
		"content%5Bcontent%5D=hi%20there&content%5Bextra%5D%5Bb%5D=2&content%5Bextra%5D%5Ba%5D=1&messageType=1&senderUserId=u1",
		"content%5Bcontent%5D=hi%20there&content%5Bextra%5D%5Ba%5D=1&content%5Bextra%5D%5Bb%5D=2&messageType=1&senderUserId=u1",
		"b7e31b7aecb65fa2cdfbc93cf7e55e94"},
	{"arrays", "json", `{"userIds":["b","a","c d"],"objs":[{"x":1},{"y":[true,false]}]}`,
		"objs%5B0%5D%5Bx%5D=1&objs%5B1%5D%5By%5D%5B0%5D=true&objs%5B1%5D%5By%5D%5B1%5D=false&userIds%5B0%5D=b&userIds%5B1%5D=a&userIds%5B2%5D=c%20d",
		"objs%5B0%5D%5Bx%5D=1&objs%5B1%5D%5By%5D%5B0%5D=true&objs%5B1%5D%5By%5D%5B1%5D=false&userIds%5B0%5D=b&userIds%5B1%5D=a&userIds%5B2%5D=c%20d",
		"objs%5B0%5D%5Bx%5D=1&objs%5B1%5D%5By%5D%5B0%5D=true&objs%5B1%5D%5By%5D%5B1%5D=false&userIds%5B0%5D=b&userIds%5B1%5D=a&userIds%5B2%5D=c%20d",
		"a6e7a8e11fccbac177674faff509b0e9"},
	{"empty", "json", `{"a":"","b":null,"c":"x","d":[],"e":{},"f":{"g":"","h":"i"}}`,
		"a=&b=&c=x&f%5Bg%5D=&f%5Bh%5D=i",
		"c=x&f%5Bh%5D=i",
		"a=&b=&c=x&f%5Bg%5D=&f%5Bh%5D=i",
		"ec23f1bf6a6631d0ade59c32efb5e4c4"},
	{"numbers", "json", `{"n":1.50,"m":1e21,"k":1e-7,"j":123456789012345678901234567890,"neg":-0,"z":0.000001,"i":20,"big":1e400}`,
		"big=Infinity&i=20&j=1.2345678901234568e%2B29&k=1e-7&m=1e%2B21&n=1.5&neg=0&z=0.000001",
		"big=Infinity&i=20&j=1.2345678901234568e%2B29&k=1e-7&m=1e%2B21&n=1.5&neg=0&z=0.000001",
		"big=Infinity&i=20&j=1.2345678901234568e%2B29&k=1e-7&m=1e%2B21&n=1.5&neg=0&z=0.000001",
		"605ed5962807c388c2fbe288570145ff"},
	{"astral", "json", `{"名字":"😀 ok","emoji":"👍🏽"}`,
		"emoji=%F0%9F%91%8D%F0%9F%8F%BD&%E5%90%8D%E5%AD%97=%F0%9F%98%80%20ok",
		"emoji=%F0%9F%91%8D%F0%9F%8F%BD&%E5%90%8D%E5%AD%97=%F0%9F%98%80%20ok",
		"emoji=%F0%9F%91%8D%F0%9F%8F%BD&%E5%90%8D%E5%AD%97=%F0%9F%98%80%20ok",
		"54c8ac758bbca230c49826a6a6cbbe9b"},
	{"intkeys", "json", `{"o":{"b":"1","30":"2","5x":"3"}}`,
		"o%5B30%5D=2&o%5Bb%5D=1&o%5B5x%5D=3",
		"o%5B30%5D=2&o%5Bb%5D=1&o%5B5x%5D=3",
		"o%5B30%5D=2&o%5B5x%5D=3&o%5Bb%5D=1",
		"d157ff4c8c57c523da3fb9ca2195bada"},
	{"form", "form", `content[content]=hi+there&userIds[]=a&userIds[]=b&x=%E4%BD%A0&sign=ABC`,
		"content%5Bcontent%5D=hi%20there&userIds%5B0%5D=a&userIds%5B1%5D=b&x=%E4%BD%A0",
		"content%5Bcontent%5D=hi%20there&userIds%5B0%5D=a&userIds%5B1%5D=b&x=%E4%BD%A0",
		"content%5Bcontent%5D=hi%20there&userIds%5B0%5D=a&userIds%5B1%5D=b&x=%E4%BD%A0",
		"9cda774792421f0dd0e98a0a45ccfc33"},
	{"deep", "json", `{"a":{"b":{"c":{"d":"e"}}},"sign":"zzz"}`,
		"a%5Bb%5D%5Bc%5D%5Bd%5D=e",
		"a%5Bb%5D%5Bc%5D%5Bd%5D=e",
		"a%5Bb%5D%5Bc%5D%5Bd%5D=e",
		"a8cb74c9df9c29ba6aea6a0c15234193"},
	{"oddkey", "json", `{"we ird[key]":"v","A":"upper","_":"u"}`,
		"A=upper&_=u&we%20ird%5Bkey%5D=v",
		"A=upper&_=u&we%20ird%5Bkey%5D=v",
		"A=upper&_=u&we%20ird%5Bkey%5D=v",
		"83c08367f21383a160d88cc4f68243cd"},
	{"booleans", "json", `{"t":true,"f":false,"arr":[null,"",1]}`,
		"arr%5B0%5D=&arr%5B1%5D=&arr%5B2%5D=1&f=false&t=true",
		"arr%5B2%5D=1&f=false&t=true",
		"arr%5B0%5D=&arr%5B1%5D=&arr%5B2%5D=1&f=false&t=true",
		"370942ff8a20662f82eb9151d340282b"},
}
